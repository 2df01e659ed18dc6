"""The template registry itself: what one process offers, bundled or registered by git URL.

Bundled templates (``templates/``) are published once as tagged git repositories; templates
registered by git URL are stored in the database, so every replica offers them, and each
replica mirrors the pinned commit into its own data dir on first use.

Every template renders from a local repository, but services record its canonical source
(:attr:`OfferedTemplate.source`): a registered template's git URL, and for a bundled one
its repository as the portal serves it read-only over HTTP
(``PORTAL_TEMPLATE_PUBLIC_BASE_URL``, :mod:`portal.scaffold.registry.git_routes`), so
``copier update`` works from any clone of the GitOps repository.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from portal.config import DEFAULT_TEMPLATE_BASE_URL, Settings
from portal.integrations.copier_answers import RecordedSource
from portal.integrations.git_sources import SourcePolicy
from portal.scaffold.registry.bundled import PublishedTemplate, discover, publish
from portal.scaffold.registry.from_git import (
    GitTemplate,
    load_registered,
    name_from_url,
    register_git_template,
    registrations,
    save_registration,
)
from portal.scaffold.registry.manifest import TemplateError, TemplateInfo

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
    source: RecordedSource | None = None  # what services record (None: `src` itself)

    @classmethod
    def of(cls, template: GitTemplate) -> OfferedTemplate:
        """Offer a template registered by git URL."""
        # The commit, not Copier's `git describe`: that names the mirror's own `pinned/` tag.
        source = RecordedSource(template.url, template.commit)
        return cls(template.info, template.src, template.vcs_ref, template.origin, source)


def public_url(base_url: str, name: str) -> str:
    """Return the URL a bundled template's repository is served at (``<base>/<name>.git``)."""
    return f"{base_url.rstrip('/')}/{name}.git"


class TemplateRegistry:
    """Offers bundled templates (published on first use) and registered ones (thread-safe)."""

    def __init__(
        self,
        templates_dir: Path,
        data_dir: Path,
        engine: Engine | None = None,
        policy: SourcePolicy | None = None,
        public_base_url: str = DEFAULT_TEMPLATE_BASE_URL,
    ) -> None:
        self.templates_dir = templates_dir
        self.data_dir = data_dir
        self.engine = engine
        self.policy = policy or SourcePolicy()  # where registered templates may come from
        self.public_base_url = public_base_url  # where bundled templates are served
        self._lock = threading.Lock()
        self._bundled: dict[str, OfferedTemplate] | None = None
        self._registered: dict[tuple[str, str], OfferedTemplate] = {}
        self._failed_at: dict[tuple[str, str], float] = {}
        self.problems: dict[str, str] = {}  # registered templates that cannot be offered now

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> TemplateRegistry:
        """Build the registry the settings describe (registered templates need the engine)."""
        policy = SourcePolicy.of(settings.template_url_schemes, settings.template_url_hosts)
        return cls(
            settings.templates_dir, settings.data_dir, engine, policy, settings.template_base_url()
        )

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
                        source = RecordedSource(public_url(self.public_base_url, info.name))
                        offered[info.name] = OfferedTemplate(
                            info, published.src, published.vcs_ref, source=source
                        )
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

    def published_repository(self, name: str) -> Path | None:
        """Return the git repository of the bundled template ``name``; None for any other name.

        Only names of the published templates are looked up, so no request can reach
        another folder whatever it asks for.
        """
        offered = self._load_bundled().get(name)
        return None if offered is None else Path(offered.src)

    def get(self, name: str) -> OfferedTemplate | None:
        """Return one template by name, or None when it is not registered."""
        bundled = self._load_bundled().get(name)
        if bundled is not None:
            return bundled
        return self._load_registered().get(name)
