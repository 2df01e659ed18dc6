"""The typed dependencies read what create_app put on app.state, and name a wiring mistake."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.changes.runtime import ChangesRuntime
from portal.config import Settings
from portal.deps import ChangesDep, SettingsDep, app_state


def test_routes_get_the_app_s_own_objects(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/probe")
    def probe(got: SettingsDep, changes: ChangesDep) -> dict[str, bool]:
        return {"settings": got is settings, "changes": changes is app.state.changes}

    assert TestClient(app).get("/probe").json() == {"settings": True, "changes": True}


def test_a_missing_or_mistyped_entry_is_named() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match=r"app\.state\.changes is a NoneType, not a ChangesRuntime"):
        app_state(app, "changes", ChangesRuntime)
    app.state.settings = "not settings"
    with pytest.raises(TypeError, match=r"app\.state\.settings is a str, not a Settings"):
        app_state(app, "settings", Settings)
