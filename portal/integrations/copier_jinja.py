"""Copier's Jinja dialect in a sandbox, for a template's small expressions.

:func:`evaluate` runs ``validator``, ``when`` and ``default`` expressions with Copier's
filters, minus those that read the host, so validating answers never needs Copier itself.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

_ANSIBLE_FILTERS = "jinja2_ansible_filters.AnsibleCoreFiltersExtension"
# Filters that read the host's files, environment or working directory.
_HOST_FILTERS = ("fileglob", "expanduser", "expandvars", "realpath", "relpath")


class TemplateCodeError(ValueError):
    """A template's Jinja expression failed to compile or to render."""


@dataclasses.dataclass(frozen=True)
class JinjaSyntax:
    """A template's Jinja delimiters (Copier's ``_envops`` may change them)."""

    block_start_string: str = "{%"
    block_end_string: str = "%}"
    variable_start_string: str = "{{"
    variable_end_string: str = "}}"
    comment_start_string: str = "{#"
    comment_end_string: str = "#}"

    @classmethod
    def from_envops(cls, envops: Mapping[str, Any]) -> JinjaSyntax:
        """Pick the delimiters out of Copier's ``_envops``; ValueError if one is not text."""
        known = {item.name for item in dataclasses.fields(cls)}
        delimiters = {key: value for key, value in envops.items() if key in known}
        if not all(isinstance(value, str) and value for value in delimiters.values()):
            raise ValueError("Jinja delimiters in '_envops' must be non-empty text")
        return cls(**delimiters)

    def has_markers(self, text: str) -> bool:
        """Tell whether ``text`` holds Jinja syntax, Jinja's default or this template's."""
        starts = {"{{", "{%", "{#", self.block_start_string, self.variable_start_string}
        return any(marker in text for marker in starts | {self.comment_start_string})


@functools.lru_cache(maxsize=8)
def _environment(syntax: JinjaSyntax) -> SandboxedEnvironment:
    options: dict[str, Any] = {"keep_trailing_newline": True, **dataclasses.asdict(syntax)}
    try:
        env = SandboxedEnvironment(extensions=[_ANSIBLE_FILTERS], **options)
    except ImportError:  # a dependency of Copier; without it only Jinja's filters exist
        env = SandboxedEnvironment(**options)
    for name in _HOST_FILTERS:
        env.filters.pop(name, None)
    return env


@functools.lru_cache(maxsize=1024)
def _compile(syntax: JinjaSyntax, source: str) -> jinja2.Template:
    return _environment(syntax).from_string(source)


DEFAULT_SYNTAX = JinjaSyntax()


def check_syntax(source: str, syntax: JinjaSyntax = DEFAULT_SYNTAX) -> None:
    """Raise :class:`TemplateCodeError` when ``source`` is not valid Jinja."""
    try:
        _compile(syntax, source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateCodeError(f"line {exc.lineno}: {exc.message}") from exc


def evaluate(source: str, context: Mapping[str, Any], syntax: JinjaSyntax = DEFAULT_SYNTAX) -> str:
    """Render ``source`` in the sandbox with ``context``; :class:`TemplateCodeError` if it fails."""
    try:
        return _compile(syntax, source).render(dict(context))
    except Exception as exc:  # any failure of the template's own code is reported as such
        raise TemplateCodeError(str(exc) or type(exc).__name__) from exc
