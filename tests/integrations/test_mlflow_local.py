"""The local MLflow: the real server of ``make tools``, its REST API, and its life cycle.

A start answers ``/health`` and the registry's REST API on loopback, keeps its database
and the artifacts it proxies in its folder, and runs without the portal's secrets or
inherited MLflow settings; a stop leaves nothing running. A server left by a portal that
was killed is stopped by the next start on the same folder, a pid file naming another
program is left alone, and an executable that is missing or fails says so.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal.integrations.local_server import group_alive, stop_group
from portal.integrations.mlflow_local import (
    LocalMlflow,
    LocalMlflowError,
    find_mlflow,
    server_env,
)
from tests.conftest import require_tool
from tests.mlflow_server import failing_stand_in, stand_in

API = "/api/2.0/mlflow"


def call(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = httpx.request(method, f"{url}{API}/{path}", timeout=30, **kwargs)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (entry.decode(errors="replace").partition("=") for entry in raw if entry)
    return {name: value for name, _, value in pairs}


# A stand-in whose first start finds its port taken, as when another program binds the
# port between the portal's choice and MLflow's bind; the next start serves /health.
PORT_TAKEN_ONCE = """
import http.server, pathlib, sys
port = int(next(a for a in sys.argv if a.startswith("--port=")).partition("=")[2])
first = pathlib.Path("first-port")
if not first.exists():
    first.write_text(str(port))
    print(f"[Errno 98] error while attempting to bind on address ('127.0.0.1', {port}): "
          "address already in use", flush=True)
    sys.exit(1)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


# Units: the executable, the environment -----------------------------------------------


def test_find_mlflow_takes_the_configured_file_or_make_tools_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_mlflow() is None
    installed = tmp_path / ".tools" / "mlflow" / "bin" / "mlflow"
    installed.parent.mkdir(parents=True)
    installed.write_text("#!/bin/sh\n")
    assert find_mlflow() is None  # not executable
    installed.chmod(0o755)
    assert find_mlflow() == installed  # absolute: the server runs in its own folder
    assert find_mlflow(Path("elsewhere/mlflow")) is None  # configured wins, even missing


def test_the_server_gets_neither_secrets_nor_inherited_mlflow_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEY", "portal-signing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("MLFLOW_SERVER_ALLOWED_HOSTS", "*")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "false")
    env = server_env()
    assert not {"PORTAL_SECRET_KEY", "AWS_SECRET_ACCESS_KEY", "PYTHONPATH"} & set(env)
    assert "MLFLOW_SERVER_ALLOWED_HOSTS" not in env
    assert env["MLFLOW_DISABLE_TELEMETRY"] == "true" and env["DO_NOT_TRACK"] == "true"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert env["PATH"] == os.environ["PATH"]


def test_a_missing_executable_says_to_run_make_tools(tmp_path: Path) -> None:
    local = LocalMlflow(tmp_path / "mlflow", executable=tmp_path / "no-mlflow")
    with pytest.raises(LocalMlflowError, match=r"no-mlflow .*run `make tools`"):
        local.start()
    assert not local.running
    assert not (tmp_path / "mlflow").exists()  # nothing half-made


def test_an_executable_that_exits_gives_its_code_and_output(tmp_path: Path) -> None:
    local = LocalMlflow(tmp_path / "mlflow", executable=failing_stand_in(tmp_path, 2))
    with pytest.raises(LocalMlflowError, match=r"mlflow exited with 2: .*No such command"):
        local.start()
    assert not local.running
    assert not local.pid_path.exists()
    assert (local.folder / "runs").read_text() == "run\n"  # no second try: not a port clash


def test_a_port_taken_before_mlflow_binds_it_is_exchanged_for_another(tmp_path: Path) -> None:
    executable = stand_in(tmp_path, f"#!{sys.executable}{PORT_TAKEN_ONCE}")
    with LocalMlflow(tmp_path / "mlflow", executable=executable) as local:
        first = int((local.folder / "first-port").read_text())
        assert local.port != first
        assert httpx.get(f"{local.url}/health", timeout=10).status_code == 200
    assert not local.running


def test_a_stop_kills_the_whole_group_when_it_ignores_sigterm() -> None:
    # A server and its worker, both deaf to SIGTERM (an ignored signal stays ignored
    # across fork and exec): only a SIGKILL to the group ends the worker too.
    deaf = ["sh", "-c", "trap '' TERM; sleep 600 & echo ready; wait"]
    with subprocess.Popen(deaf, stdout=subprocess.PIPE, text=True, start_new_session=True) as group:
        assert group.stdout is not None and group.stdout.readline() == "ready\n"
        stop_group(group.pid, reap=group.poll, timeout=0.5)
        assert not group_alive(group.pid)
        assert group.wait(timeout=5) == -signal.SIGKILL


def test_a_folder_that_cannot_be_one_is_refused_clearly(tmp_path: Path) -> None:
    tool = failing_stand_in(tmp_path, 0)
    with pytest.raises(LocalMlflowError, match=r"a\?b: a path with \?, # or %"):
        LocalMlflow(tmp_path / "a?b", executable=tool).start()
    with pytest.raises(LocalMlflowError, match=r"MLflow folder .*/bin/mlflow: File exists"):
        LocalMlflow(tool, executable=tool).start()


# The real server -----------------------------------------------------------------------

ORPHAN_MAKER = """
import json, sys, time
from pathlib import Path
from portal.integrations.mlflow_local import LocalMlflow
local = LocalMlflow(Path(sys.argv[1]), executable=Path(sys.argv[2]))
local.start()
print(json.dumps({"port": local.port}), flush=True)
time.sleep(600)
"""


@pytest.mark.integration
def test_a_server_left_by_a_killed_portal_is_stopped_and_the_next_one_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executable = require_tool("mlflow")
    folder = tmp_path / "mlflow"
    command = [sys.executable, "-c", ORPHAN_MAKER, str(folder), str(executable)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as portal:
        assert portal.stdout is not None
        orphan_port = json.loads(portal.stdout.readline())["port"]
        orphan = int((folder / "mlflow.pid").read_text())
        portal.kill()  # SIGKILL: the portal cannot stop its MLflow
    assert group_alive(orphan)  # the server and its uvicorn worker run on
    monkeypatch.setenv("PORTAL_SECRET_KEY", "portal-signing-key")
    monkeypatch.setenv("MLFLOW_SERVER_ALLOWED_HOSTS", "*")
    try:
        # The orphan's port, free again only once the orphan is stopped.
        with LocalMlflow(folder, executable=executable, port=orphan_port) as local:
            assert not group_alive(orphan)
            assert local.port == orphan_port
            pid = int(local.pid_path.read_text())
            assert pid != orphan
            assert httpx.get(f"{local.url}/health", timeout=10).text == "OK"
            exercise_the_registry_and_artifacts(local)
            env = environ_of(pid)
            assert "PORTAL_SECRET_KEY" not in env
            assert env["MLFLOW_DISABLE_TELEMETRY"] == "true"
            # The inherited "*" was dropped: another Host header is refused.
            refused = httpx.get(
                f"{local.url}{API}/registered-models/search",
                headers={"Host": "rebound.example.com"},
                timeout=10,
            )
            assert refused.status_code == 403
        assert not local.running
        assert not group_alive(pid)  # the uvicorn worker too
        assert not local.pid_path.exists()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{local.url}/health", timeout=2)
    finally:
        if group_alive(orphan):  # the test failed: leave no server behind
            os.killpg(orphan, signal.SIGKILL)


def exercise_the_registry_and_artifacts(local: LocalMlflow) -> None:
    """Create and find a registered model; upload and read back an artifact by the URL."""
    name = f"svc-{uuid.uuid4().hex[:8]}-air-quality"
    created = call(local.url, "POST", "registered-models/create", json={"name": name})
    assert created["registered_model"]["name"] == name
    found = call(
        local.url, "GET", "registered-models/search", params={"filter": f"name = '{name}'"}
    )
    assert [model["name"] for model in found["registered_models"]] == [name]
    experiment = call(local.url, "POST", "experiments/create", json={"name": name})
    experiment_id = experiment["experiment_id"]
    details = call(local.url, "GET", "experiments/get", params={"experiment_id": experiment_id})
    # Proxied: clients reach artifacts through the tracking URL, not the server's disk.
    assert details["experiment"]["artifact_location"].startswith("mlflow-artifacts:")
    path = f"{local.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/model/card.json"
    assert httpx.put(path, content=b'{"a": 1}', timeout=30).status_code == 200
    assert httpx.get(path, timeout=30).content == b'{"a": 1}'
    stored = local.folder / "artifacts" / experiment_id / "model" / "card.json"
    assert stored.read_bytes() == b'{"a": 1}'
    assert (local.folder / "mlflow.db").is_file()


@pytest.mark.integration
def test_a_pid_file_naming_another_program_is_left_alone(tmp_path: Path) -> None:
    executable = require_tool("mlflow")
    folder = tmp_path / "mlflow"
    folder.mkdir()
    unrelated = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        (folder / "mlflow.pid").write_text(f"{unrelated.pid}\n")  # a reused pid
        with LocalMlflow(folder, executable=executable) as local:
            assert unrelated.poll() is None  # not ours: left alone
            assert int(local.pid_path.read_text()) != unrelated.pid
    finally:
        unrelated.kill()
        unrelated.wait()
