"""Where a merged change is deployed: the environments whose Flux applied its merge commit.

Flux writes what it applied as ``status.lastAppliedRevision`` (``main@sha1:<sha>``): an
environment is "deployed" when that names the change's merge commit, else "waiting for
Flux" (it has not reconciled yet, or failed; the row's message says which). A later merge
on main also moves the applied revision on, so a change merged long ago shows the commit
Flux applies now instead of claiming a deployment it cannot prove.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.catalog.sync_state import NOT_CONFIGURED, SyncRow, SyncStateRuntime
from portal.changes.models import Change, ChangeStatus


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


def applied(row: SyncRow, merge_sha: str) -> bool:
    """Return True when the row's cluster last applied ``merge_sha``."""
    return row.status is not None and merge_sha in row.status.last_applied_revision


def change_deployments(runtime: object, change: Change) -> ChangeDeployments | None:
    """Return where a merged change is deployed; None for a change that is not merged."""
    if change.status is not ChangeStatus.MERGED or not change.merge_sha:
        return None
    if not isinstance(runtime, SyncStateRuntime) or not runtime.configured:
        return ChangeDeployments(change.merge_sha, problem=NOT_CONFIGURED)
    state = runtime.state(change.service)
    if state.problem:
        return ChangeDeployments(change.merge_sha, problem=state.problem)
    rows = (Deployment(row, applied(row, change.merge_sha)) for row in state.rows)
    return ChangeDeployments(change.merge_sha, tuple(rows))
