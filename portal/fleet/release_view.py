"""What a template release changes: the changelog, a default render's diff, services touched.

Shown on a template's page between two of its versions (by default the one before the
newest and the newest): the template repository's commits between them, the diff of a
render of each with the same default answers (:mod:`portal.fleet.render_diff`), and how
many services of the fleet the newer version would touch (those recorded at an older
version). Versions are immutable tags, so a comparison is kept once made; the two renders
it costs run in Copier's worker processes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from portal.changes.environments import TEMPLATE_VARIABLE as ENVIRONMENTS_VARIABLE
from portal.fleet.releases import LogEntry, TemplateVersion, changelog, commit_count
from portal.fleet.render_diff import RenderDiff, default_answers, render_diff
from portal.fleet.status import Fleet
from portal.integrations.copier import Renderer
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.scratch import scratch_folder

CACHE_SIZE = 64
MAX_COMMITS = 200


@dataclass(frozen=True)
class Release:
    """Between two versions of a template: its commits and a default render's diff."""

    from_tag: str
    to_tag: str
    commits: tuple[LogEntry, ...]
    total_commits: int
    diff: RenderDiff


def default_pair(versions: Sequence[TemplateVersion]) -> tuple[str, str] | None:
    """Return the versions compared by default: the one before the newest, and the newest."""
    if len(versions) < 2:
        return None
    return versions[1].tag, versions[0].tag


def touched(fleet: Fleet, versions: Sequence[TemplateVersion], to_tag: str) -> int:
    """Return how many services of ``fleet`` are recorded at a version older than ``to_tag``."""
    order = {version.tag: index for index, version in enumerate(versions)}  # newest is 0
    target = order.get(to_tag)
    if target is None:
        return 0
    return sum(
        1 for entry in fleet.services if entry.version in order and order[entry.version] > target
    )


@dataclass
class ReleaseReader:
    """Makes :class:`Release` views with a renderer, keeping the latest ones."""

    renderer: Renderer
    scratch: Path | None = None
    _cache: OrderedDict[tuple[str, str, str], Release] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def between(
        self,
        template: OfferedTemplate,
        from_tag: str,
        to_tag: str,
        environments: Sequence[str] = (),
    ) -> Release:
        """Return what ``to_tag`` changes since ``from_tag``.

        Raises ``GitError`` for a version the repository lacks (``UnknownRefError``) and
        ``RenderError`` when a render fails; a value git may not see is ``ValueError``.
        """
        key = (template.src, from_tag, to_tag)
        with self._lock:
            known = self._cache.get(key)
        if known is not None:
            return known
        repo = Path(template.src)
        commits = changelog(repo, from_tag, to_tag, MAX_COMMITS)
        total = commit_count(repo, from_tag, to_tag)
        answers = {**default_answers(template.info), ENVIRONMENTS_VARIABLE: list(environments)}
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
        with scratch_folder(self.scratch) as workdir:
            diff = render_diff(self.renderer, template.src, answers, from_tag, to_tag, workdir)
        release = Release(from_tag, to_tag, tuple(commits), total, diff)
        with self._lock:
            self._cache[key] = release
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return release
