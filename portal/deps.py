"""Typed FastAPI dependencies: the one place that reads what ``create_app`` put on ``app.state``.

Routes declare what they need (``settings: SettingsDep``) instead of reaching into the
application. A domain's own runtime is declared beside it with :func:`from_app_state`
(``ScaffoldDep`` in :mod:`portal.scaffold.runtime`, ``SloDep`` in :mod:`portal.slo.routes`),
so this module imports no domain: a review route that uses it never reaches scaffolding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Request
from jinja2 import Environment
from sqlalchemy import Engine

from portal.changes.runtime import ChangesRuntime
from portal.config import Settings

T = TypeVar("T")


def app_state(app: FastAPI, name: str, kind: type[T]) -> T:
    """Return ``app.state.<name>``, which ``create_app`` set to a ``kind``.

    A missing or mistyped entry is a wiring bug of the app, named here rather than as an
    ``AttributeError`` deep inside a page.
    """
    value = getattr(app.state, name, None)
    if not isinstance(value, kind):
        found = type(value).__name__
        raise TypeError(f"app.state.{name} is a {found}, not a {kind.__name__} (see create_app)")
    return value


def from_app_state(name: str, kind: type[T]) -> Callable[[Request], T]:
    """Return a dependency that reads ``app.state.<name>`` of the request's app."""

    def read(request: Request) -> T:
        return app_state(request.app, name, kind)

    read.__name__ = read.__qualname__ = f"app_{name}"
    read.__doc__ = f"Return the app's {name} ({kind.__name__})."
    return read


app_settings = from_app_state("settings", Settings)
app_engine = from_app_state("engine", Engine)
app_jinja = from_app_state("jinja", Environment)
app_changes = from_app_state("changes", ChangesRuntime)

SettingsDep = Annotated[Settings, Depends(app_settings)]
EngineDep = Annotated[Engine, Depends(app_engine)]
ChangesDep = Annotated[ChangesRuntime, Depends(app_changes)]
