"""Where a merged change is deployed: the environments whose Flux applied its merge commit.

Flux writes what it applied as ``status.lastAppliedRevision`` (``main@sha1:<sha>``): an
environment is "deployed" when that is the change's merge commit or a later commit of
main that contains it (read in the portal's clone), else "waiting for Flux" (it has not
reconciled yet, or failed; the row's message says which, and a commit the clone does not
know yet counts as not containing it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from portal.catalog.sync_state import NOT_CONFIGURED, SyncRow, SyncStateRuntime, revision_sha
from portal.changes.models import Change, ChangeStatus
from portal.integrations.git import GitError


@dataclass(frozen=True)
class Deployment:
    """One environment of a merged change."""

    row: SyncRow
    deployed: bool

    @property
    def environment(self) -> str:
        """Return the environment's name."""
        return self.row.environment


@dataclass(frozen=True)
class ChangeDeployments:
    """The change page's "Deployed" section; ``problem`` when it cannot be read."""

    merge_sha: str
    deployments: tuple[Deployment, ...] = ()
    problem: str = ""


def applied(row: SyncRow, merge_sha: str, contains: Callable[[str, str], bool]) -> bool:
    """Return True when the row's cluster applied ``merge_sha`` or a commit containing it.

    ``contains(commit, of)``: whether ``of`` contains ``commit`` (an ancestry check).
    """
    if row.status is None:
        return False
    commit = revision_sha(row.status.last_applied_revision)
    if not commit:
        return False
    if commit == merge_sha:
        return True
    try:
        return contains(merge_sha, commit)
    except GitError:  # Flux applied a commit this clone has not fetched yet
        return False


def change_deployments(runtime: object, change: Change) -> ChangeDeployments | None:
    """Return where a merged change is deployed; None for a change that is not merged."""
    if change.status is not ChangeStatus.MERGED or not change.merge_sha:
        return None
    if not isinstance(runtime, SyncStateRuntime) or not runtime.configured:
        return ChangeDeployments(change.merge_sha, problem=NOT_CONFIGURED)
    state = runtime.state(change.service)
    if state.problem:
        return ChangeDeployments(change.merge_sha, problem=state.problem)
    repo = runtime.gitops()
    rows = (Deployment(row, applied(row, change.merge_sha, repo.is_ancestor)) for row in state.rows)
    return ChangeDeployments(change.merge_sha, tuple(rows))
