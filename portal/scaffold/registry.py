"""The templates one portal process offers: bundled ones and ones registered by git URL.

Bundled templates (``templates/``) are published once as tagged git repositories; templates
registered by git URL are stored in the database, so every replica offers them, and each
replica mirrors the pinned commit into its own data dir on first use.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from portal.config import Settings
from portal.integrations.git_sources import SourcePolicy
from portal.scaffold.git_templates import (
    GitTemplate,
    load_registered,
    name_from_url,
    register_git_template,
    registrations,
    save_registration,
)
from portal.scaffold.templates import (
    PublishedTemplate,
    TemplateError,
    TemplateInfo,
    discover,
    publish,
)

logger = logging.getLogger(__name__)

# A registered template that could not be loaded (its remote down, its commit gone) is not
# fetched again before this: every page that lists templates would otherwise wait on git.
RETRY_FAILED_SECONDS = 300.0


@dataclass(frozen=True)
class OfferedTemplate:
    """A template ready to render: its manifest and questions, and where Copier reads it."""

    info: TemplateInfo
    src: str
    vcs_ref: str
    origin: str = "bundled"  # or "<url> at <ref>" for a template registered by git URL

    @classmethod
    def of(cls, template: GitTemplate) -> OfferedTemplate:
        """Offer a template registered by git URL."""
        return cls(template.info, template.src, template.vcs_ref, template.origin)


class TemplateRegistry:
    """Offers bundled templates (published on first use) and registered ones (thread-safe)."""

    def __init__(
        self,
        templates_dir: Path,
        data_dir: Path,
        engine: Engine | None = None,
        policy: SourcePolicy | None = None,
    ) -> None:
        self.templates_dir = templates_dir
        self.data_dir = data_dir
        self.engine = engine
        self.policy = policy or SourcePolicy()  # where registered templates may come from
        self._lock = threading.Lock()
        self._bundled: dict[str, OfferedTemplate] | None = None
        self._registered: dict[tuple[str, str], OfferedTemplate] = {}
        self._failed_at: dict[tuple[str, str], float] = {}
        self.problems: dict[str, str] = {}  # registered templates that cannot be offered now

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> TemplateRegistry:
        """Build the registry the settings describe (registered templates need the engine)."""
        policy = SourcePolicy.of(settings.template_url_schemes, settings.template_url_hosts)
        return cls(settings.templates_dir, settings.data_dir, engine, policy)

    def bundled_names(self) -> set[str]:
        """Return the names of the bundled templates (registered ones may not take them)."""
        return set(self._load_bundled())

    def _load_bundled(self) -> dict[str, OfferedTemplate]:
        with self._lock:
            if self._bundled is None:
                offered: dict[str, OfferedTemplate] = {}
                if self.templates_dir.is_dir():
                    for info in discover(self.templates_dir):
                        published: PublishedTemplate = publish(info, self.data_dir)
                        offered[info.name] = OfferedTemplate(info, published.src, published.vcs_ref)
                self._bundled = offered
            return self._bundled

    def _load_registered(self) -> dict[str, OfferedTemplate]:
        if self.engine is None:
            return {}
        with Session(self.engine) as session:
            rows = registrations(session)
        offered: dict[str, OfferedTemplate] = {}
        with self._lock:
            for row in rows:
                key = (row.name, row.commit)
                failed_at = self._failed_at.get(key)
                if failed_at is not None and time.monotonic() - failed_at < RETRY_FAILED_SECONDS:
                    continue
                if key not in self._registered:
                    try:
                        template = load_registered(row, self.data_dir, self.policy)
                    except TemplateError as exc:
                        logger.warning("registered template %s is not offered: %s", row.name, exc)
                        self.problems[row.name] = str(exc)
                        self._failed_at[key] = time.monotonic()
                        continue
                    self._registered[key] = OfferedTemplate.of(template)
                    self._failed_at.pop(key, None)
                    self.problems.pop(row.name, None)
                offered[row.name] = self._registered[key]
        return offered

    def register(
        self, session: Session, url: str, ref: str, name: str | None, registered_by: str
    ) -> OfferedTemplate:
        """Fetch, inspect, pin and store a template from a git URL; offer it from now on.

        Registering a name again re-pins it to what ``ref`` points at now. Raises
        ``TemplateError`` (naming the URL, ref or file) and stores nothing when refused.
        """
        chosen = name or name_from_url(url)
        if chosen in self.bundled_names():
            raise TemplateError(f"{chosen!r} is a bundled template; register it under another name")
        template = register_git_template(
            url, ref, name=chosen, data_dir=self.data_dir, policy=self.policy
        )
        save_registration(session, template, registered_by)
        self.problems.pop(template.info.name, None)
        return OfferedTemplate.of(template)

    def _load(self) -> dict[str, OfferedTemplate]:
        bundled = self._load_bundled()
        return {**self._load_registered(), **bundled}  # a bundled name always wins

    def all(self) -> list[OfferedTemplate]:
        """Return every offered template, sorted by name."""
        offered = self._load()
        return [offered[name] for name in sorted(offered)]

    def get(self, name: str) -> OfferedTemplate | None:
        """Return one template by name, or None when it is not registered."""
        bundled = self._load_bundled().get(name)
        if bundled is not None:
            return bundled
        return self._load_registered().get(name)
