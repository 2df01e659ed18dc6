"""The receiver with its worker processes (PORTAL_TRACE_INGEST_PROCESSES, the default 2).

The other receiver tests store in the request thread (``trace_ingest_processes=0`` in the
``settings`` fixture); these check that the processes store, refuse and answer the same,
and that a dead worker costs one retried export, not the receiver.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.auth.models import TRACES_WRITE_SCOPE
from portal.config import Settings
from tests.traces.otlp_requests import batch
from tests.traces.test_receiver import PROTOBUF, add_token, status_of


@pytest.fixture
def remote(settings: Settings) -> Iterator[TestClient]:
    """A portal whose exports are stored by two worker processes, seen from another machine."""
    processes = settings.model_copy(update={"trace_ingest_processes": 2, "trace_max_spans": 64})
    with TestClient(create_app(processes), client=("10.1.2.3", 40000)) as client:
        yield client


def spans_stored(client: TestClient) -> int:
    with client.app.state.engine.connect() as connection:  # type: ignore[attr-defined]
        return int(connection.scalar(sa.text("SELECT count(*) FROM trace_span")) or 0)


def workers() -> list[BaseProcess]:
    return [child for child in multiprocessing.active_children() if child.pid != os.getpid()]


def test_worker_processes_store_and_refuse_like_the_request_thread(remote: TestClient) -> None:
    token = add_token(remote, [TRACES_WRITE_SCOPE], ["air-quality"])
    headers = PROTOBUF | {"Authorization": f"Bearer {token}"}
    stored = remote.post("/v1/traces", content=batch("air-quality", 16), headers=headers)
    assert stored.status_code == 200, stored.content
    assert workers(), "the export was stored by a worker process"
    # A foreign service's spans (decided in the worker, once decoded): 403, nothing stored.
    foreign = remote.post("/v1/traces", content=batch("payments", 8), headers=headers)
    assert foreign.status_code == 403
    assert "may not send spans of payments" in status_of(foreign.content).message
    # Over the span limit (64 here) and malformed: 400, nothing stored.
    over = remote.post("/v1/traces", content=batch("air-quality", 65), headers=headers)
    assert over.status_code == 400 and "65 spans" in status_of(over.content).message
    truncated = remote.post("/v1/traces", content=batch("air-quality", 8)[:-5], headers=headers)
    assert truncated.status_code == 400
    assert spans_stored(remote) == 16


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_dead_worker_costs_one_export_then_new_workers_take_over(remote: TestClient) -> None:
    token = add_token(remote, [TRACES_WRITE_SCOPE], ["air-quality"])
    headers = PROTOBUF | {"Authorization": f"Bearer {token}"}
    assert remote.post("/v1/traces", content=batch("air-quality", 8), headers=headers).is_success
    for worker in workers():
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        worker.join(10)
    lost = remote.post("/v1/traces", content=batch("air-quality", 8), headers=headers)
    assert lost.status_code == 503  # exporters retry a 503
    assert "send the spans again" in status_of(lost.content).message
    again = remote.post("/v1/traces", content=batch("air-quality", 8), headers=headers)
    assert again.status_code == 200
    assert spans_stored(remote) == 16
