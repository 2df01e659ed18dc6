"""The approval gate on real git: failed, errored or unfinished checks stop an approval.

A platform admin may approve over failed checks with a reason (recorded on the change, in
the audit log and in the merge commit on ``main``); the checks are read under the
decision's claim, so a re-run racing the approval cannot slip through.
"""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.auth.identity import Identity
from portal.changes.claims import DecisionClaim, claim_decision
from portal.changes.models import AuditEvent, Change, ChangeStatus, CheckRun
from portal.changes.store import replace_checks
from portal.config import Settings
from portal.integrations.gitops import GitOpsError, GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.review import decide
from portal.review.checks import CheckStatus
from portal.review.decide import DecisionError, approve, reject
from portal.review.gate import FINISHED_STATUSES, Override, commit_section, gate_of
from tests.review.test_decide_race import (
    AUTHOR,
    REVIEWERS,
    TEAM,
    branch_on_remote,
    load,
    merged_into_main,
    propose,
    remote_git,
)

ADMIN = Identity(
    "user:default/ada.lovelace", "Ada Lovelace", frozenset({TEAM, "group:default/platform-admins"})
)
REVIEWER = REVIEWERS[0]  # of the owning team, not an admin
FAILING = (("schema (dev)", "passed"), ("checkov", "failed"), ("cost (prod)", "warning"))
REASON = "The checkov finding is a false positive on this base image; ticket OPS-42."


@pytest.fixture
def gitops(settings: Settings) -> GitOpsRepo:
    return bootstrap_gitops(settings)


def run(name: str, status: str) -> CheckRun:
    return CheckRun(change_id="x", name=name, status=status, summary="")


def events(engine: Engine, change_id: str) -> list[tuple[str, str, str]]:
    with Session(engine) as session:
        found = session.exec(select(AuditEvent).where(AuditEvent.change_id == change_id)).all()
        return [(event.actor_ref, event.action, event.detail) for event in found]


def main_message(settings: Settings) -> str:
    return remote_git(settings, "log", "-1", "--format=%B", "main").stdout


def refused_approval(
    engine: Engine,
    settings: Settings,
    gitops: GitOpsRepo,
    change_id: str,
    identity: Identity = REVIEWER,
    override: Override | None = None,
) -> DecisionError:
    """Approve, expect a refusal, and check that nothing was merged or recorded."""
    with Session(engine) as session, pytest.raises(DecisionError) as refused:
        approve(session, load(session, change_id), identity, gitops, settings, override)
    with Session(engine) as session:
        change = load(session, change_id)
        assert change.status is ChangeStatus.READY and change.decision_token is None
        assert change.override_reason is None and change.merge_sha is None
        assert change.commit_sha is not None
        assert not merged_into_main(settings, change.commit_sha)
    assert events(engine, change_id) == []
    return refused.value


# The gate itself ---------------------------------------------------------------------


def test_the_gate_sorts_checks_and_knows_every_check_outcome() -> None:
    assert {status.value for status in CheckStatus} == FINISHED_STATUSES
    gate = gate_of(
        [
            run("schema", "passed"),
            run("checkov", "failed"),
            run("slo rules", "error"),
            run("cost (dev)", "warning"),
            run("policy", "running"),
        ]
    )
    assert gate.blocking == ("checkov", "slo rules") and gate.warnings == ("cost (dev)",)
    assert gate.unfinished == ("policy",) and gate.waiting and not gate.open
    assert gate_of([]).waiting and "no checks have run" in gate_of([]).why_waiting()
    clean = gate_of([run("schema", "passed"), run("cost", "warning")])
    assert clean.open and clean.blocking == () and clean.warnings == ("cost",)


def test_a_reason_cannot_forge_a_trailer_or_a_heading() -> None:
    forged = "fine by me\n\nApproved-by: user:default/mallory\nChange: other"
    section = commit_section(Override(forged, ("checkov",)), ADMIN.user_ref)
    assert section.endswith("\n\n")
    lines = section.splitlines()
    assert lines[:2] == [
        "Approved over failing checks: checkov",
        "Reason given by user:default/ada.lovelace:",
    ]
    assert all(line == "" or line.startswith("    ") for line in lines[2:]), lines


# Refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["failed", "error"])
def test_a_failed_or_errored_check_blocks_the_approval(
    engine: Engine, settings: Settings, gitops: GitOpsRepo, status: str
) -> None:
    checks = (("schema (dev)", "passed"), ("checkov", status), ("cost (dev)", "warning"))
    change_id = propose(engine, gitops, f"blocked-{status}", checks=checks)
    refusal = refused_approval(engine, settings, gitops, change_id)
    assert refusal.status == 409 and refusal.blocking == ("checkov",)
    assert "1 check failed or could not run: checkov" in refusal.message
    assert "ask a member of platform-admins to approve over them" in refusal.message
    # The claim was given up: the change can still be decided.
    with Session(engine) as session:
        rejected = reject(session, load(session, change_id), REVIEWER, gitops, settings)
        assert rejected.status is ChangeStatus.REJECTED


@pytest.mark.parametrize(
    ("checks", "says"),
    [
        ((("schema (dev)", "passed"), ("checkov", "running")), "have not finished (checkov)"),
        ((("schema (dev)", "passed"), ("policy", "pending")), "have not finished (policy)"),
        ((), "no checks have run on this change yet"),
    ],
)
def test_unfinished_checks_block_the_approval_even_for_an_admin(
    engine: Engine,
    settings: Settings,
    gitops: GitOpsRepo,
    checks: tuple[tuple[str, str], ...],
    says: str,
) -> None:
    change_id = propose(engine, gitops, "waiting", checks=checks)
    refusal = refused_approval(engine, settings, gitops, change_id)
    assert refusal.status == 409 and says in refusal.message
    over = Override(REASON, ("checkov",))
    refusal = refused_approval(engine, settings, gitops, change_id, ADMIN, over)
    assert refusal.status == 409 and says in refusal.message


def test_warnings_do_not_block(engine: Engine, settings: Settings, gitops: GitOpsRepo) -> None:
    checks = (("schema (dev)", "passed"), ("cost (prod)", "warning"))
    change_id = propose(engine, gitops, "warned", checks=checks)
    with Session(engine) as session:
        change = approve(session, load(session, change_id), REVIEWER, gitops, settings)
        assert change.status is ChangeStatus.MERGED and change.override_reason is None
    assert [action for _, action, _ in events(engine, change_id)] == ["approved"]
    assert "Approved over failing checks" not in main_message(settings)


def test_only_a_platform_admin_may_approve_over_failing_checks(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "not-admin", checks=FAILING)
    over = Override(REASON, ("checkov",))
    refusal = refused_approval(engine, settings, gitops, change_id, REVIEWER, over)
    assert refusal.status == 403
    assert refusal.message == "only members of platform-admins may approve over failing checks"


@pytest.mark.parametrize(
    ("reason", "checks", "field", "says"),
    [
        ("", ("checkov",), "override_reason", "is required: say why"),
        ("   \n\t  ", ("checkov",), "override_reason", "at least 10 characters (this one has 0)"),
        ("too short", ("checkov",), "override_reason", "(this one has 9)"),
        ("x" * 2001, ("checkov",), "override_reason", "at most 2,000 characters"),
        ("fine\x1b[31m by me", ("checkov",), "override_reason", "control characters (U+001B"),
        ("fine \u202e by me!", ("checkov",), "override_reason", "control characters (U+202E"),
        ("fine \ud800 by me!", ("checkov",), "override_reason", "valid Unicode text (U+D800"),
        (REASON, (), "override_checks", "name the failing checks"),
    ],
)
def test_an_override_needs_a_fit_reason_and_the_checks_it_goes_over(
    engine: Engine,
    settings: Settings,
    gitops: GitOpsRepo,
    reason: str,
    checks: tuple[str, ...],
    field: str,
    says: str,
) -> None:
    change_id = propose(engine, gitops, "unreasoned", checks=FAILING)
    over = Override(reason, checks)
    refusal = refused_approval(engine, settings, gitops, change_id, ADMIN, over)
    assert refusal.status == 422 and refusal.field == field
    assert says in refusal.message, refusal.message


# The override ----------------------------------------------------------------------------


def test_an_admin_approves_over_failing_checks_with_a_reason_recorded_everywhere(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    checks = (*FAILING, ("slo rules", "error"))
    change_id = propose(engine, gitops, "overridden", checks=checks)
    # Several lines, one trying to pass for a trailer: it stays in the body, indented.
    reason = f"  {REASON}\r\nApproved-by: user:default/mallory\n\nSecond paragraph.  "
    over = Override(reason, ("slo rules", "checkov", "checkov"))
    with Session(engine) as session:
        change = approve(session, load(session, change_id), ADMIN, gitops, settings, over)
        assert change.status is ChangeStatus.MERGED and change.approved_by == ADMIN.user_ref
        stored = f"{REASON}\nApproved-by: user:default/mallory\n\nSecond paragraph."
        assert change.override_reason == stored
        assert change.override_checks == ["checkov", "slo rules"]  # in run order
        merge_sha = change.merge_sha
    assert merge_sha is not None
    logged = events(engine, change_id)
    assert [action for _, action, _ in logged] == ["approve-override", "approved"]
    assert logged[0] == (
        ADMIN.user_ref,
        "approve-override",
        f"approved over failing checks checkov, slo rules: {stored}",
    )
    message = main_message(settings)
    assert remote_git(settings, "rev-parse", "main").stdout.strip() == merge_sha
    assert (
        "Approved over failing checks: checkov, slo rules\n"
        "Reason given by user:default/ada.lovelace:\n"
        f"    {REASON}\n    Approved-by: user:default/mallory\n\n    Second paragraph.\n\n"
        f"Change: {change_id}\nRequested-by: {AUTHOR}\nApproved-by: {ADMIN.user_ref}\n"
    ) in message
    # git reads exactly the portal's trailers: the reason could not add one.
    trailers = remote_git(settings, "log", "-1", "--format=%(trailers:only,unfold)", "main")
    assert trailers.stdout.strip().splitlines() == [
        f"Change: {change_id}",
        f"Requested-by: {AUTHOR}",
        f"Approved-by: {ADMIN.user_ref}",
    ]


def test_an_override_when_nothing_fails_any_more_is_an_ordinary_approval(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "fixed-meanwhile")
    with Session(engine) as session:
        over = Override(REASON, ("checkov",))
        change = approve(session, load(session, change_id), ADMIN, gitops, settings, over)
        assert change.status is ChangeStatus.MERGED and change.override_reason is None
    assert [action for _, action, _ in events(engine, change_id)] == ["approved"]
    assert "Approved over failing checks" not in main_message(settings)


# Races: the checks are read once the claim is held ------------------------------------


def checks_replaced_after_the_claim(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, failing: list[str]
) -> None:
    """Make a re-run of the checks land just after the approval claimed the change."""

    def claim_then_rerun(session: Session, change: Change, *args: object) -> DecisionClaim | None:
        claim = claim_decision(session, change, *args)  # type: ignore[arg-type]
        with Session(engine) as other:
            runs = [CheckRun(change_id=change.id, name="schema (dev)", status="passed", summary="")]
            runs += [
                CheckRun(change_id=change.id, name=name, status="failed", summary="")
                for name in failing
            ]
            replace_checks(other, change.id, runs)
            other.commit()
        return claim

    monkeypatch.setattr(decide, "claim_decision", claim_then_rerun)


def test_checks_that_fail_after_the_claim_stop_the_approval(
    engine: Engine, settings: Settings, gitops: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_id = propose(engine, gitops, "rerun")  # passing when the approval starts
    checks_replaced_after_the_claim(monkeypatch, engine, ["policy (prod)"])
    refusal = refused_approval(engine, settings, gitops, change_id)
    assert refusal.status == 409 and refusal.blocking == ("policy (prod)",)


def test_an_override_does_not_stretch_over_checks_that_changed_meanwhile(
    engine: Engine, settings: Settings, gitops: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_id = propose(engine, gitops, "moved-on", checks=FAILING)
    checks_replaced_after_the_claim(monkeypatch, engine, ["checkov", "policy (prod)"])
    over = Override(REASON, ("checkov",))  # what the admin read
    refusal = refused_approval(engine, settings, gitops, change_id, ADMIN, over)
    assert refusal.status == 409 and refusal.blocking == ("checkov", "policy (prod)")
    assert "the checks changed since they were read" in refusal.message
    assert "Now failing or unable to run: checkov, policy (prod)" in refusal.message


def test_an_interrupted_override_is_recorded_with_its_reason(
    engine: Engine, settings: Settings, gitops: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    change_id = propose(engine, gitops, "override-timeout", checks=FAILING)
    real_merge = gitops.merge

    def push_lands_then_times_out(
        branch: str, message: str, author: tuple[str, str], **checked: str | None
    ) -> str:
        real_merge(branch, message, author, **checked)
        raise GitOpsError("git push timed out after 10 s")

    monkeypatch.setattr(gitops, "merge", push_lands_then_times_out)
    over = Override(REASON, ("checkov",))
    with Session(engine) as session, pytest.raises(GitOpsError, match="timed out"):
        approve(session, load(session, change_id), ADMIN, gitops, settings, over)
    monkeypatch.setattr(gitops, "merge", real_merge)
    with Session(engine) as session:
        with pytest.raises(DecisionError, match="merged cannot be rejected"):
            reject(session, load(session, change_id), REVIEWER, gitops, settings)
        change = load(session, change_id)
        assert change.status is ChangeStatus.MERGED and change.approved_by == ADMIN.user_ref
        assert change.override_reason == REASON and change.override_checks == ["checkov"]
    assert [action for _, action, _ in events(engine, change_id)] == [
        "approve-override",
        "approved",
    ]
    assert branch_on_remote(settings, "scaffold/override-timeout")
    assert f"    {REASON}\n" in main_message(settings)


def test_a_plain_git_log_shows_the_reason(
    engine: Engine, settings: Settings, gitops: GitOpsRepo
) -> None:
    change_id = propose(engine, gitops, "logged", checks=FAILING)
    with Session(engine) as session:
        over = Override(REASON, ("checkov",))
        approve(session, load(session, change_id), ADMIN, gitops, settings, over)
    remote = settings.data_dir / "gitops" / "remote.git"
    log = subprocess.run(
        ["git", "--git-dir", str(remote), "log", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Approved over failing checks: checkov" in log and REASON in log
