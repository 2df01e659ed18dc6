"""Jobs survive crashes: interrupted changes resume, failures end in a clear state."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from portal.changes.claims import claim_next
from portal.changes.models import Change, ChangeStatus
from portal.changes.store import get_change
from portal.cli import initialise
from portal.clock import utcnow
from portal.config import Settings
from portal.integrations.copier import FakeRenderer
from portal.scaffold.jobs import _render_and_commit, run_pending
from portal.scaffold.request import request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO
from tests.scaffold.claims import dead_worker_id


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Iterator[ScaffoldRuntime]:
    initialise(settings.model_copy(update={"catalog_paths": [str(REPO / "catalog")]}), gitops=True)
    scaffold = ScaffoldRuntime(engine, settings)
    yield scaffold
    scaffold.stop()


def new_change(runtime: ScaffoldRuntime, name: str, claimed_by: str | None = None) -> Change:
    context = runtime.context
    with Session(context.engine) as session:
        return request_scaffold(
            session,
            context.registry,
            context.gitops(),
            "fastapi-service",
            {"name": name, "owner": "platform-team", "description": "x"},
            "user:default/ada.lovelace",
            claimed_by=claimed_by,
            environments=runtime.environments(),
        )


def status_of(runtime: ScaffoldRuntime, change_id: str) -> Change:
    with Session(runtime.context.engine) as session:
        change = get_change(session, change_id)
        assert change is not None
        return change


def test_change_claimed_by_a_dead_worker_resumes_on_start(runtime: ScaffoldRuntime) -> None:
    change = new_change(runtime, "resumed")
    with Session(runtime.context.engine) as session:
        claimed = claim_next(session, dead_worker_id())
    assert claimed is not None and claimed.id == change.id
    assert run_pending(runtime.context) == 0  # still claimed: nobody else takes it
    runtime.start()  # a restart releases the claims of the previous run (no worker thread)
    assert run_pending(runtime.context) == 1
    assert status_of(runtime, change.id).status is ChangeStatus.READY


def test_crash_after_push_reuses_the_branch(runtime: ScaffoldRuntime) -> None:
    change = new_change(runtime, "pushed")
    with tempfile.TemporaryDirectory() as tmp, Session(runtime.context.engine) as session:
        stored = get_change(session, change.id)
        assert stored is not None
        _render_and_commit(runtime.context, stored, Path(tmp), None)  # then "crash"
        pushed = stored.commit_sha
    assert status_of(runtime, change.id).commit_sha is None
    assert run_pending(runtime.context) == 1
    done = status_of(runtime, change.id)
    assert done.status is ChangeStatus.READY
    assert done.commit_sha == pushed
    assert any(step["detail"] == "branch already pushed" for step in done.steps)


def test_render_failure_ends_failed_without_a_branch(runtime: ScaffoldRuntime) -> None:
    runtime.context.renderer = FakeRenderer(error="template exploded")
    change = new_change(runtime, "broken")
    assert run_pending(runtime.context) == 1
    failed = status_of(runtime, change.id)
    assert failed.status is ChangeStatus.FAILED
    assert failed.error is not None and "template exploded" in failed.error
    assert not runtime.context.gitops().branch_exists("scaffold/broken")
    assert failed.claimed_by is None


def test_stale_claims_expire(runtime: ScaffoldRuntime) -> None:
    change = new_change(runtime, "stale")
    with Session(runtime.context.engine) as session:
        stored = get_change(session, change.id)
        assert stored is not None
        stored.claimed_by, stored.claimed_at = "gone", utcnow().replace(year=2000)
        session.add(stored)
        session.commit()
    assert run_pending(runtime.context) == 1


def test_renders_go_to_the_scratch_folder_and_leave_nothing(
    runtime: ScaffoldRuntime, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    context = runtime.context
    context.settings = context.settings.model_copy(update={"scratch_dir": scratch})
    fake = FakeRenderer({"README.md": "# $name\n"})
    context.renderer = fake
    change = new_change(runtime, "scratchy")
    assert run_pending(context) == 1
    assert fake.calls and fake.calls[0][3].is_relative_to(scratch)
    assert list(scratch.iterdir()) == []  # removed once the change was checked
    assert status_of(runtime, change.id).commit_sha is not None


def test_the_worker_first_warms_up_copier_and_every_snapshot(
    settings: Settings, engine: Engine
) -> None:
    scaffold = ScaffoldRuntime(engine, settings.model_copy(update={"run_worker": True}))
    snapshots = settings.data_dir / "templates" / "snapshots"
    offered = len(scaffold.context.registry.all())
    scaffold.start()
    try:
        deadline = time.monotonic() + 60
        while len(list(snapshots.glob("*/snapshot.json"))) < offered:
            assert time.monotonic() < deadline, "the worker made no snapshots"
            time.sleep(0.05)
    finally:
        scaffold.stop()
    made = [json.loads(path.read_text()) for path in snapshots.glob("*/snapshot.json")]
    assert len(made) == offered and all(meta["refused"] is None for meta in made)


def test_a_change_the_cli_processes_is_never_taken_by_a_serving_portal(
    runtime: ScaffoldRuntime,
) -> None:
    context = runtime.context
    change = new_change(runtime, "by-cli", claimed_by=context.worker_id)  # as the CLI does
    with Session(context.engine) as session:
        assert claim_next(session, "other-host:4242") is None
    assert status_of(runtime, change.id).claimed_by == context.worker_id
