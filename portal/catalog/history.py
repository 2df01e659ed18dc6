"""A service's History: the log of its folder on GitOps ``main``, each commit with its change.

A Component of the ``default`` namespace whose name is a DNS-1123 label is a service when
``services/<name>/`` exists on ``main``. Its history lists the first-parent commits of
``main`` that touched that folder, newest first, a page at a time; each merge the portal
made is matched to its change (``merge_sha``, or ``commit_sha`` for a branch that was
already on ``main``): who proposed it (the change's requester, and the token it came
through), when, and who approved it and when, from the audit trail (the change's
``approved_by`` when the trail lacks the event). A commit no change made links to its own
diff.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, or_, select

from portal.auth.tokens import SERVICE_NAME
from portal.changes.models import AuditEvent, Change
from portal.integrations.git import GitError
from portal.integrations.git_history import FolderCommit, FolderHistory, GitPythonHistory
from portal.integrations.gitops import GitOpsClone

PAGE_SIZE = 20
MAX_PAGE = 5000  # 100,000 commits back: past that, git would walk for nothing
FETCH_TIMEOUT = 2.0  # seconds a History view waits to fetch main before reading the clone's
PROPOSED = ("requested", "proposed")  # a scaffold is requested, an edit proposed
APPROVED = "approved"
OVERRIDE = "approve-override"


def service_of(kind: str, namespace: str, name: str) -> str | None:
    """Return the service (folder name under ``services/``) an entity is, or None.

    Only Components of the ``default`` namespace whose name is a DNS-1123 label: that name
    is what a scaffold used for the folder, and what may then reach git as a path.
    """
    if kind.lower() != "component" or namespace != "default":
        return None
    return name if SERVICE_NAME.fullmatch(name) else None


def folder_of(service: str) -> str:
    """Return the service's folder in the GitOps repository."""
    if not SERVICE_NAME.fullmatch(service):
        raise ValueError(f"service {service[:80]!r} is not a DNS-1123 label")
    return f"services/{service}"


def history_reader(gitops: GitOpsClone, timeout: float) -> FolderHistory:
    """Return the GitPython reader of the portal's clone, each git call bounded by ``timeout``."""
    return GitPythonHistory(gitops.git_dir, timeout=timeout)


def main_head(gitops: GitOpsClone, timeout: float = FETCH_TIMEOUT) -> tuple[str, str]:
    """Return ``main``'s commit and, when it could not be fetched just now, why not.

    Another replica may have merged since this clone last fetched, so ``main`` is fetched
    first, waiting at most ``timeout`` for the remote and for a writer holding the clone;
    when that fails the clone's last view is used and the reason is returned to be shown.
    """
    try:
        return gitops.bounded(timeout).refresh(), ""
    except GitError as exc:
        head = gitops.resolve(gitops.main)  # GitError when the clone has no main at all
        return head, f"main could not be fetched just now ({exc}); showing the last fetched"


def unreadable(error: Exception) -> str:
    """Say, for a page, that the GitOps repository could not be read (nothing is written)."""
    return f"the GitOps repository cannot be read just now; try again later ({error})"


@dataclass(frozen=True)
class HistoryEntry:
    """One commit of the history with the change that made it, if the portal made it."""

    commit: FolderCommit
    change: Change | None = None
    proposer: str | None = None
    proposed_at: datetime | None = None
    via: str | None = None  # who or what proposed it for the requester (an API token)
    approver: str | None = None
    approved_at: datetime | None = None
    override: str | None = None  # why it was approved over failing checks

    def diff_url(self, service: str) -> str:
        """Return where the commit's diff is read: its change's diff, or the commit's own."""
        if self.change is not None:
            return f"/reviews/{self.change.id}#diff"
        return f"/reviews/services/{service}/commits/{self.commit.sha}"


@dataclass(frozen=True)
class History:
    """One page of a service's history on ``main``."""

    service: str
    head: str
    page: int
    entries: tuple[HistoryEntry, ...]
    has_older: bool
    stale: str = ""  # why main may be behind the remote; empty when just fetched

    @property
    def folder(self) -> str:
        """Return the folder the history is of."""
        return folder_of(self.service)


class PageRefusedError(ValueError):
    """The page number asked for is not one the history can have; the message says why."""


def checked_page(page: int | str) -> int:
    """Return ``page`` as a number from 1 to :data:`MAX_PAGE`; else refuse it, naming it."""
    text = str(page).strip()
    number = (
        int(text) if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_PAGE)) else 0
    )
    if not 1 <= number <= MAX_PAGE:
        raise PageRefusedError(f"page: expected a number from 1 to {MAX_PAGE}, got {text[:20]!r}")
    return number


def service_history(
    session: Session,
    reader: FolderHistory,
    head: str,
    service: str,
    page: int = 1,
    *,
    stale: str = "",
) -> History:
    """Return page ``page`` (from 1) of the service's history at ``head``, newest first."""
    page = checked_page(page)
    # One more than a page tells whether an older page exists without counting them all.
    commits = reader.log(head, folder_of(service), skip=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE + 1)
    shown = commits[:PAGE_SIZE]
    entries = tuple(entries_of(session, shown))
    return History(service, head, page, entries, len(commits) > PAGE_SIZE, stale)


def entries_of(session: Session, commits: Iterable[FolderCommit]) -> list[HistoryEntry]:
    """Match each commit to the change that made it, with its proposer and approver.

    Two queries whatever the number of commits: the changes, then their audit events.
    """
    commits = list(commits)
    shas = [commit.sha for commit in commits]
    if not shas:
        return []
    by_sha: dict[str, Change] = {}
    found = session.exec(
        select(Change).where(or_(col(Change.merge_sha).in_(shas), col(Change.commit_sha).in_(shas)))
    ).all()
    # A merge commit names its change for sure; a branch commit only when it was on main.
    for change in sorted(found, key=lambda change: change.merge_sha is not None):
        for sha in (change.commit_sha, change.merge_sha):
            if sha:
                by_sha[sha] = change
    trail = _trail(session, {change.id for change in by_sha.values()})
    return [_entry(commit, by_sha.get(commit.sha), trail) for commit in commits]


def _trail(session: Session, change_ids: set[str]) -> dict[str, list[AuditEvent]]:
    if not change_ids:
        return {}
    actions = (*PROPOSED, APPROVED, OVERRIDE)
    events = session.exec(
        select(AuditEvent)
        .where(col(AuditEvent.change_id).in_(sorted(change_ids)))
        .where(col(AuditEvent.action).in_(actions))
        .order_by(col(AuditEvent.id))
    ).all()
    trail: dict[str, list[AuditEvent]] = {}
    for event in events:
        trail.setdefault(event.change_id, []).append(event)
    return trail


def _entry(
    commit: FolderCommit, change: Change | None, trail: dict[str, list[AuditEvent]]
) -> HistoryEntry:
    if change is None:
        return HistoryEntry(commit)
    events = trail.get(change.id, [])
    proposed = next((event for event in events if event.action in PROPOSED), None)
    approved = next((event for event in reversed(events) if event.action == APPROVED), None)
    override = next((event for event in reversed(events) if event.action == OVERRIDE), None)
    # The requester is the person accountable (a token's creator when a token proposed);
    # ``proposed_by`` then names the token, shown as what it came "via".
    via = change.proposed_by if change.proposed_by not in (None, change.requester_ref) else None
    return HistoryEntry(
        commit,
        change,
        proposer=change.requester_ref,
        proposed_at=proposed.at if proposed else change.created_at,
        via=via,
        approver=approved.actor_ref if approved else change.approved_by,
        approved_at=approved.at if approved else None,
        override=override.detail if override else None,
    )


def find_commit(reader: FolderHistory, head: str, service: str, commit: str) -> FolderCommit | None:
    """Return ``commit`` (7 to 40 hex digits) if it is on ``head`` and changes the service."""
    return reader.find(head, folder_of(service), commit)


def commit_diff(reader: FolderHistory, service: str, commit: FolderCommit) -> str:
    """Return the unified diff the commit made to the service's folder."""
    return reader.diff(commit, folder_of(service))
