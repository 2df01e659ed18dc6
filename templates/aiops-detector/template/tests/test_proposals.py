"""Proposals at work: the portal's answers, dry run, the list, the deployed state from Prometheus.

The portal and Prometheus are real HTTP servers on 127.0.0.1 (a free port) answering as
they do, so the httpx client, its timeout and the error handling run for real.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.proposals import (
    PortalClient,
    PrometheusState,
    RemediationLog,
    RemediationRecord,
    Remediations,
    router,
)
from app.remediation import (
    AnomalyWindow,
    Remediator,
    ServiceState,
)
from app.rules import ScaleOut, load_config

from .remediation_cases import (
    RULES,
    FakeState,
    remediator,
    window,
)

# --- sending, dry run, the list ------------------------------------------------------------


@dataclass
class Reply:
    """One canned answer: status, JSON (or raw bytes) body, a delay."""

    status: int = 202
    body: Any = field(default_factory=dict)
    delay: float = 0.0


class Stub:
    """A local HTTP server answering queued replies (the last repeats); it records requests."""

    def __init__(self) -> None:
        self.replies: list[Reply] = [Reply()]
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: bytes) -> None:
                url = urlsplit(self.path)
                stub.requests.append(
                    {
                        "path": url.path,
                        "query": parse_qs(url.query),
                        "headers": dict(self.headers),
                        "body": json.loads(body) if body else None,
                    }
                )
                reply = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                time.sleep(reply.delay)
                raw = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # gave up
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)

            def do_GET(self) -> None:
                """Answer a query."""
                self._answer(b"")

            def do_POST(self) -> None:
                """Answer a proposal."""
                self._answer(self.rfile.read(int(self.headers["Content-Length"])))

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def running_stub() -> Iterator[Stub]:
    """Serve the stub for the module."""
    server = Stub()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def stub(running_stub: Stub) -> Stub:
    """Return the stub with its replies and requests reset."""
    running_stub.replies = [Reply()]
    running_stub.requests = []
    return running_stub


def run_handle(
    rem: Remediator,
    win: AnomalyWindow,
    portal_url: str | None,
    state: FakeState | None = None,
    timeout: float = 5.0,
) -> tuple[list[RemediationRecord], Remediations]:
    """Handle ``win`` once; return the records and the remediations object."""

    async def go() -> tuple[list[RemediationRecord], Remediations]:
        async with httpx.AsyncClient() as client:
            portal = (
                PortalClient(portal_url, "pst_0123456789ab_secret-token-value", client, timeout)
                if portal_url
                else None
            )
            remediations = Remediations(rem, state or FakeState(), portal)
            return await remediations.handle(win), remediations

    return asyncio.run(go())


def test_a_proposal_goes_to_the_portal_with_the_token(stub: Stub) -> None:
    """POST /api/changes with the bearer token; the change's id and link are recorded."""
    stub.replies = [
        Reply(
            202,
            {
                "id": "c0ffee",
                "status": "checking",
                "branch": "b",
                "commit": None,
                "url": "/api/changes/c0ffee",
            },
        )
    ]
    [record], _ = run_handle(remediator(), window(), stub.url)
    assert record.status == "proposed"
    assert record.detail == "change c0ffee (checking)"
    assert record.change_url == f"{stub.url}/api/changes/c0ffee"
    [request] = stub.requests
    assert request["path"] == "/api/changes"
    assert request["headers"]["Authorization"] == "Bearer pst_0123456789ab_secret-token-value"
    assert request["body"] == record.payload


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (
            Reply(403, {"detail": "the token may not propose changes to checkout"}),
            "the portal refused (403): the token may not propose changes to checkout",
        ),
        (
            Reply(
                422,
                {
                    "detail": "the edits were refused",
                    "errors": {"edits[0].patch.patch": "a test operation failed"},
                },
            ),
            "the portal refused (422): the edits were refused: "
            "edits[0].patch.patch: a test operation failed",
        ),
        (
            Reply(502, b"<html>bad gateway</html>"),
            "the portal refused (502): <html>bad gateway</html>",
        ),
        (Reply(202, {"unexpected": True}), "the portal answered 202 without a change id and url"),
        (Reply(202, {}, delay=1.0), "the portal did not answer within 0.3 s"),
    ],
)
def test_a_refusing_or_slow_portal_is_recorded_as_failed(
    stub: Stub, reply: Reply, detail: str
) -> None:
    """The portal's own words are kept; the token is in no record."""
    stub.replies = [reply]
    [record], remediations = run_handle(remediator(), window(), stub.url, timeout=0.3)
    assert (record.status, record.detail) == ("failed", detail)
    assert remediations.log.newest_first() == [record]
    assert "secret-token-value" not in record.model_dump_json()


def test_a_portal_that_is_down_is_recorded_as_failed(refusing_url: str) -> None:
    """Nothing listens on the port: recorded as failed, no exception."""
    [record], _ = run_handle(remediator(), window(), refusing_url)
    assert record.status == "failed"
    assert record.detail.startswith("the portal is unreachable: ConnectError")


def test_dry_run_records_the_payload_and_sends_nothing(stub: Stub) -> None:
    """Dry run (by the file, or without a portal): listed at /api/remediations, not sent."""
    dry = RULES.replace("dry_run: false", "dry_run: true")
    [record], remediations = run_handle(remediator(dry), window(), stub.url)
    assert (record.status, record.detail) == (
        "dry-run",
        "dry run: recorded, not sent to the portal",
    )
    assert record.payload is not None
    assert record.payload["edits"]
    assert stub.requests == []
    [record], remediations = run_handle(remediator(), window(), None)  # no portal: dry run too
    assert remediations.dry_run
    assert record.status == "dry-run"
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as client:
        assert client.get("/api/remediations").status_code == 503
        app.state.remediations = remediations
        listed = client.get("/api/remediations").json()
    assert listed["dry_run"] is True
    [item] = listed["remediations"]
    assert (item["rule"], item["status"]) == ("scale", "dry-run")
    assert item["payload"]["title"] == record.title


def test_remediation_never_raises_into_the_loop() -> None:
    """A bug in reading the state is logged; the detector's loop goes on."""
    broken = FakeState(error=RuntimeError("state reader bug"))
    records, remediations = run_handle(remediator(), window(), None, state=broken)
    assert records == []
    assert remediations.log.newest_first() == []


def test_the_list_keeps_the_latest_records() -> None:
    """The list is bounded: the oldest record goes first."""
    log = RemediationLog(limit=2)
    [record], _ = run_handle(remediator(), window(), None)
    for rule in ("a", "b", "c"):
        log.add(record.model_copy(update={"rule": rule}))
    assert [item.rule for item in log.newest_first()] == ["c", "b"]


# --- the deployed state from Prometheus ----------------------------------------------------


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    """Return a Prometheus instant-vector answer."""
    result = [{"metric": labels, "value": [1.0, value]} for labels, value in samples]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def read_state(stub: Stub, action: Any, label: str = "cluster") -> ServiceState:
    """Read the state of ``action`` from the stub Prometheus."""

    async def go() -> ServiceState:
        async with httpx.AsyncClient() as client:
            return await PrometheusState(stub.url, client, label, timeout=2.0).read(action)

    return asyncio.run(go())


def test_the_state_comes_from_kube_state_metrics(stub: Stub) -> None:
    """HPA bounds and the running image tag, selected by namespace and environment."""
    config = load_config(RULES)
    scale, back = config.rules[0].action, config.rules[1].action
    assert isinstance(scale, ScaleOut)
    stub.replies = [Reply(200, vector(({}, "2"))), Reply(200, vector(({}, "6")))]
    assert read_state(stub, scale) == ServiceState(min_replicas=2, max_replicas=6)
    queries = [request["query"]["query"][0] for request in stub.requests]
    assert queries == [
        f'kube_horizontalpodautoscaler_spec_{bound}_replicas{{namespace="checkout",'
        f'horizontalpodautoscaler="checkout",cluster="prod"}}'
        for bound in ("min", "max")
    ]
    image = "registry.example.com/services/checkout"
    stub.replies = [Reply(200, vector(({"image": f"{image}:1.5.0"}, "3")))]
    assert read_state(stub, back, label="") == ServiceState(image_tag="1.5.0")
    assert stub.requests[-1]["query"]["query"] == [
        'count by (image) (kube_pod_container_info{namespace="checkout",'
        'image=~"registry\\\\.example\\\\.com/services/checkout:.+"})'
    ]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(200, vector()), "has 0 series, not one"),
        (Reply(200, vector(({"cluster": "prod"}, "2"), ({"cluster": "prod"}, "3"))), "2 series"),
        (Reply(400, {"status": "error", "error": "parse error"}), "parse error"),
        (Reply(200, vector(({}, "0.5"))), "is 0.5, not a replica count"),
        (Reply(500, b"oops"), "Prometheus answered 500 without JSON"),
    ],
)
def test_an_unknown_state_says_why(stub: Stub, reply: Reply, problem: str) -> None:
    """No series, a refusal, nonsense: the state is unknown and says why."""
    stub.replies = [reply]
    action = load_config(RULES).rules[0].action
    state = read_state(stub, action)
    assert state.min_replicas is None
    assert problem in (state.problem or "")


def test_a_rollout_under_way_is_no_rollback_state(stub: Stub) -> None:
    """Two tags running: no rollback starts from a guess."""
    image = "registry.example.com/services/checkout"
    stub.replies = [
        Reply(200, vector(({"image": f"{image}:1.5.0"}, "2"), ({"image": f"{image}:1.4.0"}, "1")))
    ]
    state = read_state(stub, load_config(RULES).rules[1].action)
    assert state.image_tag is None
    assert state.problem == f"2 tags of {image} run (1.4.0, 1.5.0), not one"
