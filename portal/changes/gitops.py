"""The GitOps clone a change is worked on: bootstrapped on first use, bounded for requests.

Also the reader a merge's catalog import reads the merged service's files with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from portal.config import Settings
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo, GitOpsUnavailableError
from portal.integrations.gitops_bootstrap import bootstrap_gitops


class LazyGitOps:
    """Bootstraps the GitOps clone on first use, so starting the app does no git work."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._repo: GitOpsRepo | None = None

    def __call__(self) -> GitOpsRepo:
        """Return the clone, creating it (and the local remote) the first time."""
        with self._lock:
            if self._repo is None:
                self._repo = bootstrap_gitops(self.settings)
            return self._repo

    def bounded(self, timeout: float) -> GitOpsRepo:
        """Return the clone for a request thread: set-up, remote and lock waits bounded.

        Raises ``GitOpsUnavailableError`` instead of waiting longer than ``timeout``.
        """
        if not self._lock.acquire(timeout=timeout):
            raise GitOpsUnavailableError("the GitOps clone is still being set up; try again")
        try:
            if self._repo is None:
                self._repo = bootstrap_gitops(self.settings, timeout=timeout)
            return self._repo.bounded(timeout)
        finally:
            self._lock.release()


def gitops_unavailable(error: Exception) -> str:
    """Say, for a 503, that the GitOps repository failed a request and nothing was saved."""
    return f"the GitOps repository is unavailable, nothing was saved; try again later ({error})"


@dataclass(frozen=True)
class GitOpsFileReader:
    """Reads catalog files of the GitOps repository through the portal's own clone."""

    gitops: GitOpsRepo

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return ``path`` at ``ref`` (the URL is the clone's remote, so it is not needed)."""
        try:
            return self.gitops.read_file(ref, path)
        except GitError as exc:
            raise GitError(f"cannot read {path} at {ref} from {url}: {exc}") from exc
