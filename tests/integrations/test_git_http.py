"""``git http-backend`` as the portal runs it: the environment, deadlines and git's refusals.

Stand-in ``git`` scripts play a git that hangs, dies or answers 500; the real git answers
the ref advertisement of a real repository.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from portal.integrations import git_http
from portal.integrations.git import run_git
from portal.integrations.git_http import (
    GitHttpError,
    GitHttpResponse,
    UploadPackRequest,
    check_request_headers,
    upload_pack,
)
from portal.integrations.processes import process_alive


def fake_git(tmp_path: Path, body: str) -> str:
    script = tmp_path / "git"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def bare_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "tpl.git"
    run_git("init", "--quiet", "--bare", "--initial-branch=main", str(repo))
    return repo


async def collect(response: GitHttpResponse) -> bytes:
    return b"".join([chunk async for chunk in response.body])


def gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_real_git_advertises_the_refs(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path)
    request = UploadPackRequest(repo, advertisement=True)

    async def advertise() -> tuple[GitHttpResponse, bytes]:
        response = await upload_pack(request)
        return response, await collect(response)

    response, body = asyncio.run(advertise())

    assert response.status == 200
    assert ("Content-Type", "application/x-git-upload-pack-advertisement") in response.headers
    assert body.startswith(b"001e# service=git-upload-pack\n")


def test_git_runs_read_only_without_the_portals_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_SECRET_KEY", "sekrit")
    monkeypatch.setenv("GIT_DIR", "/elsewhere")
    seen = tmp_path / "env"
    git = fake_git(tmp_path, f"env > {seen}\nprintf 'Content-Type: x\\r\\n\\r\\n'")
    request = UploadPackRequest(bare_repo(tmp_path), False, b"0000", "gzip", "version=2")

    async def fetch() -> bytes:
        return await collect(await upload_pack(request, git=git))

    asyncio.run(fetch())

    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert "PORTAL_SECRET_KEY" not in env and "GIT_DIR" not in env
    assert env["PATH_INFO"] == "/tpl.git/git-upload-pack"
    assert env["GIT_PROJECT_ROOT"] == str(tmp_path)
    assert (env["REQUEST_METHOD"], env["CONTENT_LENGTH"]) == ("POST", "4")
    assert (env["HTTP_CONTENT_ENCODING"], env["GIT_PROTOCOL"]) == ("gzip", "version=2")
    config = {
        env[f"GIT_CONFIG_KEY_{index}"]: env[f"GIT_CONFIG_VALUE_{index}"]
        for index in range(int(env["GIT_CONFIG_COUNT"]))
    }
    assert config["http.receivepack"] == "false" and config["http.getanyfile"] == "false"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null" and env["GIT_CONFIG_NOSYSTEM"] == "1"


def test_a_git_that_does_not_answer_in_time_is_stopped_with_what_it_started(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    git = fake_git(tmp_path, f"sleep 30 & echo $$ $! > {pids}\nwait")
    request = UploadPackRequest(bare_repo(tmp_path), advertisement=True)

    started = time.monotonic()
    with pytest.raises(GitHttpError) as caught:
        asyncio.run(upload_pack(request, seconds=0.5, git=git))

    assert caught.value.status == 503 and "did not answer within 0.5 s" in caught.value.message
    assert time.monotonic() - started < 5
    assert all(gone_soon(int(pid)) for pid in pids.read_text().split())


def test_a_body_that_stalls_ends_at_the_deadline(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    git = fake_git(
        tmp_path, f"echo $$ > {pid_file}\nprintf 'Status: 200 OK\\r\\n\\r\\nabc'\nsleep 30"
    )
    request = UploadPackRequest(bare_repo(tmp_path), advertisement=True)

    async def fetch() -> bytes:
        return await collect(await upload_pack(request, seconds=1.0, git=git))

    started = time.monotonic()
    assert asyncio.run(fetch()) == b"abc"
    assert time.monotonic() - started < 5
    assert gone_soon(int(pid_file.read_text()))


def test_an_answer_nobody_reads_is_stopped_after_the_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git_http, "EXIT_GRACE_SECONDS", 0.2)
    pid_file = tmp_path / "pid"
    git = fake_git(tmp_path, f"echo $$ > {pid_file}\nprintf 'Status: 200 OK\r\n\r\nabc'\nsleep 30")
    request = UploadPackRequest(bare_repo(tmp_path), advertisement=True)

    async def abandon() -> None:
        await upload_pack(request, seconds=0.3, git=git)  # the client went away: never read
        pid = int(pid_file.read_text())
        for _ in range(100):  # five seconds at most
            if not process_alive(pid):
                break
            await asyncio.sleep(0.05)
        assert not process_alive(pid)

    asyncio.run(abandon())


@pytest.mark.parametrize(
    "script",
    [
        "printf 'Status: 500 Internal Server Error\\r\\n\\r\\n'",
        "echo 'fatal: something' >&2; exit 128",
        "head -c 20000 /dev/zero | tr '\\0' x",  # never a header block
    ],
)
def test_what_git_refuses_or_cannot_answer_is_a_400(tmp_path: Path, script: str) -> None:
    request = UploadPackRequest(bare_repo(tmp_path), False, b"garbage")

    with pytest.raises(GitHttpError) as caught:
        asyncio.run(upload_pack(request, git=fake_git(tmp_path, script)))

    assert caught.value.status == 400


def test_git_missing_is_a_503(tmp_path: Path) -> None:
    request = UploadPackRequest(bare_repo(tmp_path), advertisement=True)

    with pytest.raises(GitHttpError) as caught:
        asyncio.run(upload_pack(request, git=str(tmp_path / "no-git")))

    assert caught.value.status == 503


@pytest.mark.parametrize(
    ("encoding", "protocol"),
    [("br", None), ("deflate", None), (None, "version=2 ; rm"), (None, "x" * 200)],
)
def test_unexpected_encodings_and_protocols_are_refused(
    encoding: str | None, protocol: str | None
) -> None:
    with pytest.raises(GitHttpError) as caught:
        check_request_headers(encoding, protocol)
    assert caught.value.status == 400


def test_what_git_clients_send_is_accepted() -> None:
    for encoding, protocol in [(None, None), ("gzip", "version=2"), ("", "version=1")]:
        check_request_headers(encoding, protocol)
