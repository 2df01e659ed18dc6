"""The pipeline's two stages: renders never wait for checks, checks run at once, crashes resume."""

from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from portal.changes.claims import claim_next
from portal.changes.models import Change, ChangeStatus, CheckRun
from portal.changes.store import audit_of, checks_of, get_change
from portal.cli import initialise
from portal.config import Settings
from portal.integrations.checkov import CheckovFailure
from portal.integrations.copier import Renderer, RenderResult
from portal.integrations.copier_answers import RecordedSource
from portal.scaffold.jobs import _render_and_commit, render_change
from portal.scaffold.runtime import ScaffoldRuntime
from portal.scaffold.workers import PipelineWorkers
from tests.conftest import REPO
from tests.scaffold.claims import dead_worker_id
from tests.scaffold.test_jobs import new_change, status_of

WAIT = 120.0  # seconds; generous, the machine may be busy


class FakeSlowCheckov:
    """A fake checkov whose scans wait until the test releases them: a slow check stage."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._released = False
        self.in_flight = 0
        self.most_at_once = 0

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Count the scan as running, then wait for :meth:`release`."""
        with self._cond:
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released, timeout=WAIT)
            self.in_flight -= 1
        return []

    def wait_in_flight(self, count: int) -> bool:
        """Wait until ``count`` scans run at the same time."""
        with self._cond:
            return self._cond.wait_for(lambda: self.in_flight >= count, timeout=WAIT)

    def release(self) -> None:
        """Let every scan, running or to come, finish."""
        with self._cond:
            self._released = True
            self._cond.notify_all()


class FakeSlowRenderer:
    """A fake renderer that waits until the test releases it, then renders with ``renderer``."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.started = threading.Event()
        self.released = threading.Event()

    def render(
        self,
        template_src: str,
        vcs_ref: str,
        answers: Mapping[str, Any],
        dest: Path,
        *,
        source: RecordedSource | None = None,
    ) -> RenderResult:
        """Say the render started, wait for :attr:`released`, then render."""
        self.started.set()
        self.released.wait(WAIT)
        return self.renderer.render(template_src, vcs_ref, answers, dest, source=source)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def runtime(settings: Settings, engine: Engine) -> Iterator[ScaffoldRuntime]:
    initialise(settings.model_copy(update={"catalog_paths": [str(REPO / "catalog")]}), gitops=True)
    scaffold = ScaffoldRuntime(engine, settings)
    yield scaffold
    scaffold.stop()


@pytest.fixture
def slow_checkov(runtime: ScaffoldRuntime) -> FakeSlowCheckov:
    fake = FakeSlowCheckov()
    context = runtime.context
    context.check_tools = dataclasses.replace(context.check_tools, checkov=fake)
    return fake


@pytest.fixture
def start_workers(runtime: ScaffoldRuntime) -> Iterator[Callable[[int], PipelineWorkers]]:
    started: list[PipelineWorkers] = []

    def start(check_workers: int) -> PipelineWorkers:
        workers = PipelineWorkers(runtime.context, check_workers=check_workers)
        workers.start()
        started.append(workers)
        return workers

    yield start
    for workers in started:
        workers.stop()


def is_(runtime: ScaffoldRuntime, change_id: str, status: ChangeStatus) -> Callable[[], bool]:
    return lambda: status_of(runtime, change_id).status is status


def test_a_scaffold_is_pushed_while_another_change_is_being_checked(
    runtime: ScaffoldRuntime,
    slow_checkov: FakeSlowCheckov,
    start_workers: Callable[[int], PipelineWorkers],
) -> None:
    workers = start_workers(1)  # one check worker, busy with the first change
    first = new_change(runtime, "first")
    workers.wake()
    assert slow_checkov.wait_in_flight(1), "the first change's checks never started"

    second = new_change(runtime, "second")
    workers.wake()
    wait_until(is_(runtime, second.id, ChangeStatus.CHECKING), "the second change's render")
    pushed = status_of(runtime, second.id)
    assert pushed.commit_sha is not None
    assert runtime.context.gitops().head_of("scaffold/second") == pushed.commit_sha
    assert status_of(runtime, first.id).status is ChangeStatus.CHECKING  # still being checked
    assert slow_checkov.in_flight == 1

    slow_checkov.release()
    wait_until(is_(runtime, first.id, ChangeStatus.READY), "the first change's checks")
    wait_until(is_(runtime, second.id, ChangeStatus.READY), "the second change's checks")


def test_checks_of_two_changes_run_at_the_same_time(
    runtime: ScaffoldRuntime,
    slow_checkov: FakeSlowCheckov,
    start_workers: Callable[[int], PipelineWorkers],
) -> None:
    workers = start_workers(2)
    changes = [new_change(runtime, name) for name in ("one", "two")]
    workers.wake()
    both = slow_checkov.wait_in_flight(2)
    slow_checkov.release()
    assert both, f"at most {slow_checkov.most_at_once} change(s) checked at once"
    for change in changes:
        wait_until(is_(runtime, change.id, ChangeStatus.READY), f"the checks of {change.service}")
        with Session(runtime.context.engine) as session:
            actions = [event.action for event in audit_of(session, change.id)]
        assert actions == ["requested", "rendered", "checked"]


def test_the_check_stage_starts_no_change_while_a_render_runs(runtime: ScaffoldRuntime) -> None:
    context = runtime.context
    checked = new_change(runtime, "to-check")
    assert render_change(context, checked.id) is ChangeStatus.CHECKING
    slow = FakeSlowRenderer(context.renderer)
    context.renderer = slow
    rendered = new_change(runtime, "rendering")
    workers = PipelineWorkers(context, check_workers=1)
    busy = threading.Thread(target=workers.render.run_one)
    busy.start()
    try:
        assert slow.started.wait(WAIT)
        workers.checks.start()
        time.sleep(1)  # the check stage would have started the waiting change by now
        waiting = status_of(runtime, checked.id)
        assert waiting.status is ChangeStatus.CHECKING
        assert not [step for step in waiting.steps if step["name"] == "checks"]
    finally:
        slow.released.set()
        busy.join(WAIT)
    try:
        workers.checks.wake()
        wait_until(is_(runtime, checked.id, ChangeStatus.READY), "the checks after the render")
        wait_until(is_(runtime, rendered.id, ChangeStatus.READY), "the rendered change's checks")
    finally:
        workers.checks.stop()


def claim_as(runtime: ScaffoldRuntime, worker_id: str, *statuses: ChangeStatus) -> Change:
    with Session(runtime.context.engine) as session:
        claimed = claim_next(session, worker_id, statuses)
    assert claimed is not None
    return claimed


def branch_commits(runtime: ScaffoldRuntime, branch: str) -> int:
    """Count the commits of ``branch`` on the remote that ``main`` does not have."""
    remote = runtime.context.settings.data_dir / "gitops" / "remote.git"
    count = subprocess.run(
        ["git", "--git-dir", str(remote), "rev-list", "--count", f"main..{branch}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(count.stdout)


def test_a_render_interrupted_before_its_push_is_rendered_again(runtime: ScaffoldRuntime) -> None:
    change = new_change(runtime, "unpushed")
    claim_as(runtime, dead_worker_id(), ChangeStatus.RENDERING)
    with Session(runtime.context.engine) as session:
        crashed = get_change(session, change.id)
        assert crashed is not None
        crashed.steps = [{"name": "render", "status": "running", "detail": "", "at": ""}]
        session.add(crashed)
        session.commit()
    workers = PipelineWorkers(runtime.context, check_workers=1)
    assert not workers.render.run_one()  # claimed by the dead worker, until a start

    runtime.start()  # releases the dead worker's claim (no worker threads: run_worker off)
    assert not workers.checks.run_one()  # the check stage does not take a change to render
    assert workers.render.run_one()
    rendered = status_of(runtime, change.id)
    assert rendered.status is ChangeStatus.CHECKING and rendered.claimed_by is None
    assert branch_commits(runtime, "scaffold/unpushed") == 1
    assert workers.checks.run_one()
    assert status_of(runtime, change.id).status is ChangeStatus.READY


def test_a_render_interrupted_after_its_push_goes_on_to_the_checks(
    runtime: ScaffoldRuntime, tmp_path: Path
) -> None:
    change = new_change(runtime, "pushed-then-crashed")
    with Session(runtime.context.engine) as session:
        stored = get_change(session, change.id)
        assert stored is not None
        _render_and_commit(runtime.context, stored, tmp_path, None)  # then the process dies
        pushed = stored.commit_sha
    assert render_change(runtime.context, change.id) is ChangeStatus.CHECKING
    resumed = status_of(runtime, change.id)
    assert resumed.commit_sha == pushed
    assert branch_commits(runtime, "scaffold/pushed-then-crashed") == 1  # not pushed again
    with Session(runtime.context.engine) as session:
        rendered = [event for event in audit_of(session, change.id) if event.action == "rendered"]
    assert len(rendered) == 1 and "branch already pushed" in rendered[0].detail


def test_checks_interrupted_by_a_crash_run_again_and_replace_partial_results(
    runtime: ScaffoldRuntime,
) -> None:
    change = new_change(runtime, "checked-twice")
    workers = PipelineWorkers(runtime.context, check_workers=1)
    assert workers.render.run_one()
    claim_as(runtime, dead_worker_id(), ChangeStatus.CHECKING)
    with Session(runtime.context.engine) as session:  # what the crashed run had stored
        session.add(CheckRun(change_id=change.id, name="stale", status="passed", summary="x"))
        session.commit()
    assert not workers.checks.run_one()  # still claimed by the dead worker

    runtime.start()
    assert not workers.render.run_one()  # the render stage does not take a change to check
    assert workers.checks.run_one()
    done = status_of(runtime, change.id)
    assert done.status is ChangeStatus.READY and done.claimed_by is None
    with Session(runtime.context.engine) as session:
        runs = {run.name: run.environment for run in checks_of(session, change.id)}
        checked = [event for event in audit_of(session, change.id) if event.action == "checked"]
    names = list(runs)
    assert "stale" not in names and "kustomize (dev)" in names
    assert len(names) == len(set(names)) and len(checked) == 1
    # Each run stores its environment; the checks of the service's own files have none.
    assert runs["kustomize (dev)"] == "dev" and runs["schema (prod)"] == "prod"
    assert runs["policy"] is None


def test_checks_that_cannot_run_fail_the_change_with_the_reason(runtime: ScaffoldRuntime) -> None:
    change = new_change(runtime, "lost-commit")
    workers = PipelineWorkers(runtime.context, check_workers=1)
    assert workers.render.run_one()
    with Session(runtime.context.engine) as session:
        stored = get_change(session, change.id)
        assert stored is not None
        stored.commit_sha = "0" * 40  # e.g. the commit vanished from the remote
        session.add(stored)
        session.commit()
    assert workers.checks.run_one()
    failed = status_of(runtime, change.id)
    assert failed.status is ChangeStatus.FAILED and failed.claimed_by is None
    assert failed.error is not None and "0000000000" in failed.error
    assert [step["status"] for step in failed.steps if step["name"] == "checks"] == ["failed"]
