"""A GitOps remote that is gone or hung: requests answer 503 with the reason, in time.

The hung remote is a real TCP listener on loopback that never accepts: git connects, sends
its request and waits for an answer that never comes, as with a stuck git server.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.app import create_app
from portal.changes.models import Change, ChangeStatus
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.integrations.gitops_run import exclusive
from tests.conftest import ADA, GRACE, REPO, changes_runtime, csrf_token, runtime
from tests.databases import SQLITE_ONLY
from tests.integrations.gitops_support import git
from tests.review.test_pages import decide, request_change, stored

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

TIMEOUT = 1.0  # PORTAL_GITOPS_REQUEST_TIMEOUT_SECONDS in these tests
WELL_UNDER_THE_WORKER_TIMEOUT = 30.0  # seconds; without the bound a hung fetch takes 120
ANSWERS = {"name": "payments", "owner": "platform-team", "description": "Takes payments"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with a short request timeout for the GitOps remote."""
    return settings.model_copy(update={"gitops_request_timeout_seconds": TIMEOUT})


@contextmanager
def silent_remote() -> Iterator[str]:
    """Yield an http git URL whose server takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)  # the kernel completes handshakes; nobody ever reads
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/gitops.git"


def processes_mentioning(text: str) -> list[str]:
    """Return the command lines of running processes that mention ``text`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended meanwhile
        if text in command:
            found.append(command)
    return found


def point_clone_at(settings: Settings, url: str) -> None:
    git("--git-dir", str(settings.data_dir / "gitops" / "work"), "config", "remote.origin.url", url)


def remove_remote(portal: TestClient, settings: Settings) -> None:
    changes_runtime(portal).request_gitops()  # the clone is set up while the remote is still there
    shutil.rmtree(settings.data_dir / "gitops" / "remote.git")


def changes(portal: TestClient) -> list[Change]:
    with Session(runtime(portal).context.engine) as session:
        return list(session.exec(select(Change)))


def test_the_api_answers_503_when_the_remote_is_gone(
    portal: TestClient, settings: Settings
) -> None:
    remove_remote(portal, settings)
    body = {"template": "fastapi-service", "answers": ANSWERS}
    response = portal.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "GitOps repository is unavailable, nothing was saved" in detail
    assert "cannot be reached" in detail and "remote.git" in detail
    assert changes(portal) == []


def test_the_create_form_answers_503_with_the_reason_and_keeps_the_answers(
    portal: TestClient, settings: Settings
) -> None:
    remove_remote(portal, settings)
    token = csrf_token(portal, "/create/fastapi-service")
    response = portal.post(
        "/create/fastapi-service", data={"csrf_token": token, **ANSWERS}, headers=ADA
    )
    assert response.status_code == 503
    assert "GitOps repository: the GitOps repository is unavailable" in response.text
    assert 'value="payments"' in response.text and "Takes payments" in response.text
    assert changes(portal) == []


def test_a_hung_remote_is_given_up_within_the_timeout(
    portal: TestClient, settings: Settings
) -> None:
    changes_runtime(portal).request_gitops()
    with silent_remote() as url:
        point_clone_at(settings, url)
        started = time.monotonic()
        body = {"template": "fastapi-service", "answers": ANSWERS}
        response = portal.post("/api/scaffold", json=body, headers=ADA)
        elapsed = time.monotonic() - started
        left_behind = processes_mentioning(url)  # git's http helper, still connected?
    assert response.status_code == 503, response.text
    assert f"did not answer within {TIMEOUT:g} s (git fetch)" in response.json()["detail"]
    assert left_behind == []
    assert elapsed < WELL_UNDER_THE_WORKER_TIMEOUT
    assert changes(portal) == []


def test_a_hung_remote_on_first_use_is_given_up_too(settings: Settings) -> None:
    with silent_remote() as url:
        hung = settings.model_copy(
            update={
                "auth_mode": AuthMode.TRUSTED_HEADER,
                "catalog_paths": [str(REPO / "catalog")],
                "gitops_remote": url,
            }
        )
        initialise(hung)  # the catalog only: the GitOps clone is set up on first use
        with TestClient(create_app(hung)) as client:
            started = time.monotonic()
            body = {"template": "fastapi-service", "answers": ANSWERS}
            response = client.post("/api/scaffold", json=body, headers=ADA)
            elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert "did not answer within" in response.json()["detail"]
    assert elapsed < WELL_UNDER_THE_WORKER_TIMEOUT


def test_a_clone_held_by_another_writer_is_waited_for_only_so_long(
    portal: TestClient, settings: Settings
) -> None:
    changes_runtime(portal).request_gitops()
    body = {"template": "fastapi-service", "answers": ANSWERS}
    with exclusive(settings.data_dir / "gitops" / "work" / "portal-write.lock"):
        response = portal.post("/api/scaffold", json=body, headers=ADA)
    assert response.status_code == 503
    assert "stayed busy with another operation" in response.json()["detail"]
    assert portal.post("/api/scaffold", json=body, headers=ADA).status_code == 202


def test_approve_and_reject_answer_503_and_record_nothing_when_the_remote_is_down(
    portal: TestClient, settings: Settings
) -> None:
    change_id = request_change(portal, "payments")
    shutil.rmtree(settings.data_dir / "gitops" / "remote.git")

    approved = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert approved.status_code == 503, approved.text
    assert "cannot be reached" in approved.json()["detail"]
    rejected = portal.post(f"/api/changes/{change_id}/reject", json={}, headers=GRACE)
    assert rejected.status_code == 503, rejected.text
    status, _, html = decide(portal, change_id, "approve", GRACE)
    assert status == 503 and "the GitOps repository is unavailable" in html
    assert 'role="alert"><strong>Not done:</strong>' in html
    assert stored(portal, change_id).status is ChangeStatus.READY

    with silent_remote() as url:
        point_clone_at(settings, url)
        started = time.monotonic()
        status, _, html = decide(portal, change_id, "reject", GRACE, "not now")
        elapsed = time.monotonic() - started
    assert status == 503 and "did not answer within" in html
    assert elapsed < WELL_UNDER_THE_WORKER_TIMEOUT
    assert stored(portal, change_id).status is ChangeStatus.READY


def test_the_slo_pages_do_not_wait_for_a_hung_remote(
    portal: TestClient, settings: Settings
) -> None:
    changes_runtime(portal).request_gitops()
    with silent_remote() as url:
        point_clone_at(settings, url)
        started = time.monotonic()
        response = portal.get("/slos", headers=ADA)
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < WELL_UNDER_THE_WORKER_TIMEOUT, elapsed
    assert "services/*/slo.yaml cannot be read" in response.text
