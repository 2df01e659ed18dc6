"""Two replicas on one database: no change is processed twice, a start keeps live claims.

Each replica has its own engine, GitOps clone and worker id, as separate processes would;
they meet in the database and at the GitOps remote. On PostgreSQL (the database replicas
share in production) claims use ``FOR UPDATE SKIP LOCKED``; on SQLite the conditional
update decides.
"""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.changes.models import WORK_STATUSES, Change, ChangeStatus
from portal.changes.store import audit_of
from portal.cli import initialise
from portal.clock import utcnow
from portal.config import Settings
from portal.db import make_engine
from portal.integrations.processes import process_alive
from portal.scaffold.runtime import ScaffoldRuntime
from portal.scaffold.workers import PipelineWorkers
from tests.conftest import REPO
from tests.scaffold.claims import dead_worker_id, live_worker_id
from tests.scaffold.test_jobs import new_change

CHANGES = 10
WAIT = 300.0  # seconds for all ten; the machine may be busy


@dataclasses.dataclass
class Replica:
    settings: Settings
    engine: Engine
    runtime: ScaffoldRuntime


def replica(settings: Settings, worker_id: str | None = None) -> Replica:
    engine = make_engine(settings)
    runtime = ScaffoldRuntime(engine, settings)
    context = runtime.context
    # The claims are the subject here, not checkov: leave it out to keep the run short.
    context.check_tools = dataclasses.replace(context.check_tools, checkov=None)
    if worker_id is not None:
        context.worker_id = worker_id
    return Replica(settings, engine, runtime)


@pytest.fixture
def replicas(settings: Settings, tmp_path: Path) -> Iterator[tuple[Replica, Replica]]:
    """Replica A (this process) and B (worker id of another live process of this host)."""
    shared = settings.database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    first = settings.model_copy(
        update={
            "data_dir": tmp_path / "a",
            "database_url": shared,
            "catalog_paths": [str(REPO / "catalog")],
        }
    )
    initialise(first, gitops=True)
    remote = first.data_dir / "gitops" / "remote.git"
    second = first.model_copy(
        update={"data_dir": tmp_path / "b", "gitops_remote": str(remote), "catalog_paths": []}
    )
    initialise(second, gitops=True)  # its own clone of the same remote
    with live_worker_id() as other:
        pair = (replica(first), replica(second, other))
        try:
            yield pair
        finally:
            for each in pair:
                each.runtime.stop()
                each.engine.dispose()


def statuses(engine: Engine) -> dict[str, ChangeStatus]:
    with Session(engine) as session:
        return {change.id: change.status for change in session.exec(select(Change)).all()}


def test_two_replicas_share_the_work_and_process_every_change_once(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    ids = [new_change(first.runtime, f"shared-{index:02d}").id for index in range(CHANGES)]
    workers = [PipelineWorkers(each.runtime.context, check_workers=2) for each in (first, second)]
    for each in workers:
        each.start()
    try:
        deadline = time.monotonic() + WAIT
        while any(status in WORK_STATUSES for status in statuses(first.engine).values()):
            assert time.monotonic() < deadline, statuses(first.engine)
            time.sleep(0.1)
    finally:
        for each in workers:
            each.stop()

    # A change rendered twice would fail: its branch already exists.
    assert set(statuses(first.engine).values()) == {ChangeStatus.READY}
    remote = first.settings.data_dir / "gitops" / "remote.git"
    workers_seen: set[str] = set()
    with Session(first.engine) as session:
        for change_id in ids:
            events = audit_of(session, change_id)
            assert [event.action for event in events] == ["requested", "rendered", "checked"]
            workers_seen.update(
                event.detail.rpartition("(worker ")[2].rstrip(")") for event in events[1:]
            )
            change = session.get(Change, change_id)
            assert change is not None and change.claimed_by is None
            count = subprocess.run(
                ["git", "--git-dir", str(remote), "rev-list", "--count", f"main..{change.branch}"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert count.stdout.strip() == "1", change.branch  # one commit: pushed once
    # Which replica took which change depends on timing; only these two may appear.
    assert workers_seen <= {first.runtime.context.worker_id, second.runtime.context.worker_id}


def claimed(engine: Engine, change_id: str, worker_id: str, ago: timedelta) -> None:
    with Session(engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        change.claimed_by, change.claimed_at = worker_id, utcnow() - ago
        session.add(change)
        session.commit()


def claims(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        return {change.service: change.claimed_by for change in session.exec(select(Change)).all()}


def test_a_replica_start_releases_only_claims_whose_worker_is_gone(
    replicas: tuple[Replica, Replica],
) -> None:
    first, second = replicas
    host = socket.gethostname()
    changes = {
        name: new_change(first.runtime, name).id
        for name in ("live", "other-host", "dead", "stale", "reused-pid")
    }
    live = second.runtime.context.worker_id  # the other replica, alive on this host
    dead = dead_worker_id()
    claimed(first.engine, changes["live"], live, timedelta(0))  # made by that process
    claimed(first.engine, changes["other-host"], "elsewhere:1", timedelta(minutes=1))
    claimed(first.engine, changes["dead"], dead, timedelta(seconds=1))
    claimed(first.engine, changes["stale"], "elsewhere:2", timedelta(minutes=11))
    newer = subprocess.Popen(["sleep", "600"])  # started after the claim below was made
    try:
        claimed(first.engine, changes["reused-pid"], f"{host}:{newer.pid}", timedelta(minutes=1))
        first.runtime.start()  # run_worker is off: only the release on start
        assert claims(first.engine) == {
            "live": live,
            "other-host": "elsewhere:1",
            "dead": None,
            "stale": None,
            "reused-pid": None,
        }
    finally:
        newer.kill()
        newer.wait()

    # Once the other replica's process has ended, the next start releases its claim too.
    pid = int(live.rpartition(":")[2])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)  # a zombie (the fixture reaps it later) counts as gone
    first.runtime.start()
    assert claims(first.engine)["live"] is None
    assert claims(first.engine)["other-host"] == "elsewhere:1"
