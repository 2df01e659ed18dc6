"""The templates one portal process offers: bundled ones, published once as tagged git repos."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from portal.config import Settings
from portal.scaffold.templates import PublishedTemplate, TemplateInfo, discover, publish


@dataclass(frozen=True)
class OfferedTemplate:
    """A template ready to render: its manifest and questions, and where Copier reads it."""

    info: TemplateInfo
    src: str
    vcs_ref: str


class TemplateRegistry:
    """Discovers ``templates/`` and publishes each template on first use (thread-safe)."""

    def __init__(self, templates_dir: Path, data_dir: Path) -> None:
        self.templates_dir = templates_dir
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._offered: dict[str, OfferedTemplate] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateRegistry:
        """Build the registry the settings describe."""
        return cls(settings.templates_dir, settings.data_dir)

    def _load(self) -> dict[str, OfferedTemplate]:
        with self._lock:
            if self._offered is None:
                offered: dict[str, OfferedTemplate] = {}
                if self.templates_dir.is_dir():
                    for info in discover(self.templates_dir):
                        published: PublishedTemplate = publish(info, self.data_dir)
                        offered[info.name] = OfferedTemplate(info, published.src, published.vcs_ref)
                self._offered = offered
            return self._offered

    def all(self) -> list[OfferedTemplate]:
        """Return every offered template, sorted by name."""
        return [self._load()[name] for name in sorted(self._load())]

    def get(self, name: str) -> OfferedTemplate | None:
        """Return one template by name, or None when it is not registered."""
        return self._load().get(name)
