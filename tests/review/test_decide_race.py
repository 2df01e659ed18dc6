"""Concurrent decisions on one change: merged once or not at all, one audit event.

Real git (a bootstrapped local GitOps remote), real threads released together by a
barrier, on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.auth.identity import Identity
from portal.catalog.models import Entity
from portal.changes.claims import STALE_DECISION, claim_decision, settle_decision
from portal.changes.models import AuditEvent, Change, ChangeStatus, CheckRun
from portal.clock import utcnow
from portal.config import Settings
from portal.integrations.gitops import GitOpsError, GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.review.decide import DecisionError, approve, reject, request_changes
from tests.conftest import ADA, GRACE, runtime

TEAM = "group:default/platform-team"
AUTHOR = "user:default/alan.turing"
REVIEWERS = [
    Identity(f"user:default/reviewer-{index}", f"Reviewer {index}", frozenset({TEAM}))
    for index in range(8)
]
DECISIONS = ("approved", "rejected")
# A ready change has been checked (the approval gate refuses one without checks).
PASSED = (("schema (dev)", "passed"), ("checkov", "passed"))


def propose(
    engine: Engine,
    gitops: GitOpsRepo,
    name: str,
    extra: str = "",
    checks: tuple[tuple[str, str], ...] = PASSED,
) -> str:
    """Push a branch adding a service with its catalog entity; store a ready change for it.

    ``checks`` are the ``(name, status)`` of the check runs the change is stored with.
    """
    entity = (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\nspec:\n  type: service\n  lifecycle: experimental\n"
        "  owner: platform-team\n"
    )
    files = {f"services/{name}/catalog-info.yaml": entity.encode()}
    if extra:
        files[extra] = f"{name}\n".encode()
    branch = f"scaffold/{name}"
    sha = gitops.create_branch(branch, files, f"Add {name}\n", ("Alan", "alan@example.org"))
    change = Change(
        title=f"Add {name}",
        template="fastapi-service",
        service=name,
        owner_ref=TEAM,
        requester_ref=AUTHOR,
        answers={"name": name},
        branch=branch,
        commit_sha=sha,
        status=ChangeStatus.READY,
    )
    with Session(engine) as session:
        session.add(change)
        session.flush()
        for check, status in checks:
            run = CheckRun(change_id=change.id, name=check, status=status, summary=status)
            session.add(run)
        session.commit()
        return change.id


def remote_git(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    remote = settings.data_dir / "gitops" / "remote.git"
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], capture_output=True, text=True, check=False
    )


def merged_into_main(settings: Settings, sha: str) -> bool:
    return remote_git(settings, "merge-base", "--is-ancestor", sha, "main").returncode == 0


def merges_of(settings: Settings, sha: str) -> int:
    listing = remote_git(settings, "rev-list", "--merges", "--parents", "main").stdout
    return sum(sha in line.split()[1:] for line in listing.splitlines())


def branch_on_remote(settings: Settings, branch: str) -> bool:
    return bool(remote_git(settings, "branch", "--list", branch).stdout.strip())


def decision_events(engine: Engine, change_id: str) -> list[str]:
    with Session(engine) as session:
        events = session.exec(select(AuditEvent).where(AuditEvent.change_id == change_id)).all()
        return [event.action for event in events if event.action in DECISIONS]


def entity_exists(engine: Engine, name: str) -> bool:
    with Session(engine) as session:
        found = session.exec(select(Entity).where(Entity.ref == f"component:default/{name}"))
        return found.first() is not None


Decide = Callable[[Session, Change], Change]


def race(engine: Engine, change_id: str, deciders: list[Decide]) -> list[str]:
    """Run every decider at once, each in its own thread and session; return the outcomes."""
    barrier = threading.Barrier(len(deciders))
    outcomes: list[str] = [""] * len(deciders)

    def decide(index: int) -> None:
        with Session(engine) as session:
            change = session.get(Change, change_id)
            assert change is not None
            barrier.wait()
            try:
                outcomes[index] = deciders[index](session, change).status.value
            except DecisionError as exc:
                outcomes[index] = f"refused {exc.status}: {exc.message}"

    threads = [threading.Thread(target=decide, args=(index,)) for index in range(len(deciders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def approver(identity: Identity, gitops: GitOpsRepo, settings: Settings) -> Decide:
    return lambda session, change: approve(session, change, identity, gitops, settings)


def rejecter(identity: Identity, gitops: GitOpsRepo, settings: Settings) -> Decide:
    return lambda session, change: reject(session, change, identity, gitops, settings, "no")


@pytest.fixture
def gitops(settings: Settings) -> GitOpsRepo:
    return bootstrap_gitops(settings)


def test_two_approvals_and_two_rejections_at_once_end_consistent(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    endings = set()
    for run in range(6):
        name = f"race-{run}"
        change_id = propose(engine, gitops, name)
        deciders = [
            approver(REVIEWERS[0], gitops, settings),
            rejecter(REVIEWERS[1], gitops, settings),
            approver(REVIEWERS[2], gitops, settings),
            rejecter(REVIEWERS[3], gitops, settings),
        ]
        outcomes = race(engine, change_id, deciders)
        with Session(engine) as session:
            change = session.get(Change, change_id)
            assert change is not None
        head = change.commit_sha
        assert head is not None
        assert change.decision_token is None, "a finished decision left its claim"
        events = decision_events(engine, change_id)
        # Whoever lost was told so cleanly (409), never a half-done decision.
        for outcome in outcomes:
            assert outcome in ("merged", "rejected") or outcome.startswith("refused 409"), outcome
        if change.status is ChangeStatus.MERGED:
            assert merged_into_main(settings, head) and merges_of(settings, head) == 1
            assert entity_exists(engine, name)
            assert events == ["approved"], events
        else:
            assert change.status is ChangeStatus.REJECTED, change.status
            assert not merged_into_main(settings, head)
            assert not branch_on_remote(settings, change.branch)
            assert not entity_exists(engine, name)
            assert events == ["rejected"], events
        assert change.status.value in outcomes, outcomes
        endings.add(change.status)
    assert endings <= {ChangeStatus.MERGED, ChangeStatus.REJECTED}


def test_eight_approvals_at_once_merge_once_with_one_audit_event(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    for run in range(3):
        change_id = propose(engine, gitops, f"eight-{run}")
        outcomes = race(engine, change_id, [approver(r, gitops, settings) for r in REVIEWERS])
        with Session(engine) as session:
            change = session.get(Change, change_id)
            assert change is not None and change.commit_sha is not None
        assert change.status is ChangeStatus.MERGED
        assert merges_of(settings, change.commit_sha) == 1
        assert decision_events(engine, change_id) == ["approved"]
        assert outcomes.count("merged") >= 1
        for outcome in outcomes:
            assert outcome == "merged" or "already being decided" in outcome, outcome


def test_approving_a_merged_change_again_writes_no_second_event(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "again")
    for identity in REVIEWERS[:3]:
        with Session(engine) as session:
            change = session.get(Change, change_id)
            assert change is not None
            assert approve(session, change, identity, gitops, settings).status.value == "merged"
    assert decision_events(engine, change_id) == ["approved"]
    with Session(engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        with pytest.raises(DecisionError, match="merged cannot be rejected") as refused:
            reject(session, change, REVIEWERS[0], gitops, settings)
        assert refused.value.status == 409
        with pytest.raises(DecisionError, match="merged cannot be sent back"):
            request_changes(session, change, REVIEWERS[0], settings, "later")


def claim_left_by_a_crash(engine: Engine, change_id: str, action: str, age: timedelta) -> None:
    """What a portal killed between its claim and the outcome leaves in the database."""
    with Session(engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        change.decision, change.decision_token = action, "0" * 32
        change.decision_by, change.decision_at = REVIEWERS[5].user_ref, utcnow() - age
        session.add(change)
        session.commit()


def load(session: Session, change_id: str) -> Change:
    change = session.get(Change, change_id)
    assert change is not None
    return change


def test_a_live_claim_refuses_other_decisions_with_who_and_since(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "busy")
    claim_left_by_a_crash(engine, change_id, "approve", timedelta(seconds=5))
    with Session(engine) as session:
        change = load(session, change_id)
        for decide in (
            approver(REVIEWERS[0], gitops, settings),
            rejecter(REVIEWERS[0], gitops, settings),
        ):
            with pytest.raises(DecisionError, match="already being decided: an approval by"):
                decide(session, change)
        with pytest.raises(DecisionError, match=REVIEWERS[5].user_ref):
            request_changes(session, change, REVIEWERS[0], settings, "wait")
    assert decision_events(engine, change_id) == []
    assert branch_on_remote(settings, "scaffold/busy")


def test_an_interrupted_approval_that_merged_is_recorded_not_rejected(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "crashed")
    claim_left_by_a_crash(engine, change_id, "approve", STALE_DECISION + timedelta(minutes=1))
    # The killed portal had pushed its merge; its database commit never happened.
    merge_sha = gitops.merge("scaffold/crashed", "Merge\n", ("Rex", "rex@example.org"))
    with Session(engine) as session:
        change = load(session, change_id)
        with pytest.raises(DecisionError, match="merged cannot be rejected"):
            reject(session, change, REVIEWERS[0], gitops, settings, "no")
    with Session(engine) as session:
        change = load(session, change_id)
        assert change.status is ChangeStatus.MERGED and change.merge_sha == merge_sha
        assert change.approved_by == REVIEWERS[5].user_ref and change.decision_token is None
    assert branch_on_remote(settings, "scaffold/crashed")
    assert decision_events(engine, change_id) == ["approved"]
    assert entity_exists(engine, "crashed")


def test_an_interrupted_approval_that_never_merged_can_be_rejected(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "stalled")
    claim_left_by_a_crash(engine, change_id, "approve", STALE_DECISION + timedelta(minutes=1))
    with Session(engine) as session:
        change = reject(session, load(session, change_id), REVIEWERS[0], gitops, settings)
        assert change.status is ChangeStatus.REJECTED
    assert not branch_on_remote(settings, "scaffold/stalled")
    assert decision_events(engine, change_id) == ["rejected"]


def test_an_interrupted_rejection_that_deleted_the_branch_is_recorded(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "gone")
    claim_left_by_a_crash(engine, change_id, "reject", STALE_DECISION + timedelta(minutes=1))
    gitops.delete_branch("scaffold/gone")
    with Session(engine) as session:
        with pytest.raises(DecisionError, match="rejected cannot be approved"):
            approve(session, load(session, change_id), REVIEWERS[0], gitops, settings)
        assert load(session, change_id).status is ChangeStatus.REJECTED
    assert decision_events(engine, change_id) == ["rejected"]
    assert not entity_exists(engine, "gone")


def test_a_failed_merge_releases_the_claim(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    first = propose(engine, gitops, "first", extra="shared/notes.txt")
    second = propose(engine, gitops, "second", extra="shared/notes.txt")
    with Session(engine) as session:
        approve(session, load(session, first), REVIEWERS[0], gitops, settings)
        with pytest.raises(Exception, match=r"conflicts in shared/notes\.txt"):
            approve(session, load(session, second), REVIEWERS[0], gitops, settings)
    with Session(engine) as session:
        change = load(session, second)
        # Conflicted (shown, never merged silently), and no claim is left behind.
        assert change.status is ChangeStatus.CONFLICTED and change.decision_token is None
        # Nothing blocks the next decision.
        assert reject(session, change, REVIEWERS[1], gitops, settings).status.value == "rejected"
    assert decision_events(engine, second) == ["rejected"]


def test_the_api_answers_409_to_the_losers(portal: TestClient, settings: Settings) -> None:
    context = runtime(portal).context
    change_id = propose(context.engine, context.gitops(), "api-race")
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def post(action: str, headers: dict[str, str]) -> None:
        barrier.wait()
        response = portal.post(f"/api/changes/{change_id}/{action}", json={}, headers=headers)
        codes.append(response.status_code)

    calls = [("approve", GRACE), ("reject", ADA), ("approve", ADA), ("reject", GRACE)]
    threads = [threading.Thread(target=post, args=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(set(codes)) in ([200], [200, 409]), codes
    final = portal.get(f"/api/changes/{change_id}").json()
    assert final["status"] in ("merged", "rejected")
    event = {"merged": "approved", "rejected": "rejected"}[final["status"]]
    assert decision_events(context.engine, change_id) == [event]


def test_a_decision_whose_stale_claim_was_taken_over_records_nothing(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "slow")
    ready = [ChangeStatus.READY]
    with Session(engine) as slow, Session(engine) as other:
        first = claim_decision(slow, load(slow, change_id), "approve", "user:default/a", ready)
        assert first is not None and first.interrupted is None
        assert (
            claim_decision(other, load(other, change_id), "reject", "user:default/b", ready) is None
        )
        claim_left_by_a_crash(engine, change_id, "approve", STALE_DECISION + timedelta(minutes=1))
        second = claim_decision(other, load(other, change_id), "reject", "user:default/b", ready)
        assert second is not None and second.interrupted == ("approve", REVIEWERS[5].user_ref)
        event = ("user:default/a", "approved", "late")
        change = load(slow, change_id)
        assert not settle_decision(slow, change, first.token, ChangeStatus.MERGED, event)
        assert change.status is ChangeStatus.READY and change.decision_token == second.token
    assert decision_events(engine, change_id) == []


def test_a_merge_that_landed_before_a_timeout_is_never_contradicted(
    engine: Engine, settings: Settings, gitops: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_id = propose(engine, gitops, "timeout")
    real_merge = gitops.merge

    def push_lands_then_times_out(
        branch: str, message: str, author: tuple[str, str], **checked: str | None
    ) -> str:
        real_merge(branch, message, author, **checked)
        raise GitOpsError("git push timed out after 10 s")

    monkeypatch.setattr(gitops, "merge", push_lands_then_times_out)
    with Session(engine) as session, pytest.raises(GitOpsError, match="timed out"):
        approve(session, load(session, change_id), REVIEWERS[0], gitops, settings)
    monkeypatch.setattr(gitops, "merge", real_merge)
    with Session(engine) as session:
        with pytest.raises(DecisionError, match="merged cannot be rejected"):
            reject(session, load(session, change_id), REVIEWERS[1], gitops, settings)
        change = load(session, change_id)
        assert change.status is ChangeStatus.MERGED
        assert change.approved_by == REVIEWERS[0].user_ref
    assert branch_on_remote(settings, "scaffold/timeout")
    assert decision_events(engine, change_id) == ["approved"]
