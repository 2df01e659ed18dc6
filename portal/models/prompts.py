"""Every service's prompts as the GitOps ``main`` has them, for the Models page and its API.

Each ``services/<name>/prompts/`` folder is read with :mod:`portal.models.prompt_files`:
its versions (note, parameters, variables) and the labels pointing at them. A service
whose files have problems is listed with them, so a broken ``labels.yaml`` shows as a
problem on the page, never as an error page. The result is kept per ``main`` commit and
``main`` is fetched at most every :data:`PROMPTS_SECONDS`.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from portal.integrations.git import GitError
from portal.integrations.gitops_clone import GitOpsClone
from portal.integrations.mlflow import ModelRegistry
from portal.models.prompt_files import PromptSet, read_prompt_folder, read_prompt_set
from portal.slo.runtime import Cached

SERVICE_PROMPT_FILE = re.compile(r"^services/(?P<service>[^/]+)/(?P<path>prompts/.+)$")
PROMPTS_SECONDS = 30.0


@dataclass(frozen=True)
class ServicePrompts:
    """One service's prompts on main."""

    service: str
    prompts: PromptSet


@dataclass(frozen=True)
class PromptsIndex:
    """The prompts of every service on main at ``commit``, and what could not be read."""

    commit: str | None = None
    services: tuple[ServicePrompts, ...] = ()
    problems: tuple[str, ...] = ()

    def service(self, name: str) -> ServicePrompts | None:
        """Return one service's prompts, None when it has none on main."""
        return next((entry for entry in self.services if entry.service == name), None)


def read_prompts(repo: GitOpsClone, commit: str) -> PromptsIndex:
    """Read every ``services/*/prompts/`` folder at ``commit`` and parse each service's set.

    The folders are exported in one git command (not one per file) into a scratch folder.
    """
    folders = sorted(
        {
            f"services/{match['service']}/prompts"
            for path in repo.list_files(commit, "services")
            if (match := SERVICE_PROMPT_FILE.match(path)) is not None
        }
    )
    if not folders:
        return PromptsIndex(commit)
    with tempfile.TemporaryDirectory(prefix="portal-prompts-") as scratch:
        repo.export_tree(commit, Path(scratch), folders)
        services = tuple(
            ServicePrompts(
                folder.split("/")[1],
                read_prompt_set(read_prompt_folder(Path(scratch) / folder.rsplit("/", 1)[0])),
            )
            for folder in folders
        )
    return PromptsIndex(commit, services)


@dataclass
class ModelsRuntime:
    """What the Models routes use: the prompts index of main, cached briefly and per commit.

    ``registry`` is the MLflow model registry (None: not configured), which the promotion
    routes read; the registry pages read it through ``RegistryRuntime``.
    """

    gitops: Callable[[], GitOpsClone]
    seconds: float = PROMPTS_SECONDS
    registry: ModelRegistry | None = None
    _by_commit: dict[str, PromptsIndex] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        """Prepare the cache of the index (filled on first use)."""
        self.prompts_cache: Cached[PromptsIndex] = Cached(self._load, self.seconds)

    def _load(self) -> PromptsIndex:
        try:
            repo = self.gitops()
            commit = repo.refresh()
            with self._lock:
                known = self._by_commit.get(commit)
            if known is not None:
                return known
            index = read_prompts(repo, commit)
        except (GitError, OSError) as error:
            problem = f"GitOps repository: services/*/prompts cannot be read ({error})"
            return PromptsIndex(problems=(problem,))
        with self._lock:
            self._by_commit = {commit: index}  # only main's newest commit is asked for
        return index

    def prompts(self) -> PromptsIndex:
        """Return the prompts of every service on main (fetched at most every ``seconds``)."""
        return self.prompts_cache.get()
