"""A service's History without its pages: commits matched to changes, paging, services.

On the fake reader and the test database; the pages: test_history.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from portal.catalog.history import (
    PAGE_SIZE,
    PageRefusedError,
    checked_page,
    entries_of,
    service_history,
    service_of,
)
from portal.changes.models import Change, ChangeStatus
from portal.changes.store import audit
from portal.integrations.git_history import FakeFolderHistory, FolderCommit
from tests.catalog.test_history import ADA, ALAN, GRACE, TEAM


def commit(sha: str, subject: str = "Commit") -> FolderCommit:
    return FolderCommit(
        sha, None, subject, "Ann", "ann@example.org", datetime(2026, 1, 1, tzinfo=UTC)
    )


def stored(session: Session, **values: object) -> Change:
    fields: dict[str, object] = {
        "title": "A change",
        "template": "t",
        "service": "svc",
        "owner_ref": TEAM,
        "requester_ref": ALAN,
        "answers": {},
        "branch": "b",
        "status": ChangeStatus.MERGED,
    }
    change = Change(**(fields | values))  # type: ignore[arg-type]
    session.add(change)
    session.commit()
    return change


def test_entries_match_merges_and_branch_commits_and_read_the_audit_trail(
    session: Session,
) -> None:
    merged = stored(session, commit_sha="1" * 40, merge_sha="2" * 40, approved_by="user:default/x")
    audit(session, merged.id, ALAN, "requested")
    audit(session, merged.id, ADA.user_ref, "approved", "merged")
    audit(session, merged.id, ADA.user_ref, "approve-override", "approved over failing checks")
    on_main = stored(session, commit_sha="3" * 40, approved_by=GRACE.user_ref)
    session.commit()

    entries = entries_of(session, [commit("2" * 40), commit("3" * 40), commit("4" * 40)])

    first, second, third = entries
    assert first.change is not None and first.change.id == merged.id
    # The audit trail's approver wins over the change's field; the override is kept.
    assert (first.proposer, first.approver) == (ALAN, ADA.user_ref)
    assert first.approved_at is not None and first.override == "approved over failing checks"
    assert second.change is not None and second.change.id == on_main.id
    assert second.approver == GRACE.user_ref and second.approved_at is None  # no event
    assert (
        third.change is None
        and third.diff_url("svc") == f"/reviews/services/svc/commits/{'4' * 40}"
    )
    assert first.diff_url("svc") == f"/reviews/{merged.id}#diff"


def test_service_history_pages_the_fake_log(session: Session) -> None:
    head = "f" * 40
    commits = [(commit(f"{n:040x}", f"c{n}"), {"services/svc": ""}) for n in range(45, 0, -1)]
    calls: list[tuple[str, ...]] = []
    reader = FakeFolderHistory({head: commits}, calls)

    first = service_history(session, reader, head, "svc")
    third = service_history(session, reader, head, "svc", 3)

    assert [e.commit.subject for e in first.entries] == [f"c{n}" for n in range(45, 25, -1)]
    assert first.has_older and third.page == 3
    assert [e.commit.subject for e in third.entries] == [f"c{n}" for n in range(5, 0, -1)]
    assert not third.has_older
    assert calls[0] == ("log", head, "services/svc", "0", str(PAGE_SIZE + 1))
    assert calls[1] == ("log", head, "services/svc", str(2 * PAGE_SIZE), str(PAGE_SIZE + 1))


def test_which_entities_are_services() -> None:
    assert service_of("component", "default", "air-quality") == "air-quality"
    assert service_of("Component", "default", "air-quality") == "air-quality"
    for kind, namespace, name in [
        ("group", "default", "team"),
        ("component", "other", "svc"),
        ("component", "default", "Upper"),
        ("component", "default", "dotted.name"),
        ("component", "default", "-leading"),
    ]:
        assert service_of(kind, namespace, name) is None
    assert checked_page("7") == 7
    with pytest.raises(PageRefusedError, match="page"):
        checked_page("007000")
