"""The bundled templates' git repositories over HTTP: clone and fetch only, and nothing else.

Run against a real ``portal serve`` with the real ``git`` as the client.
"""

from __future__ import annotations

import gzip
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.integrations.git_http import REQUEST_MEDIA_TYPE
from portal.scaffold.registry.manifest import load_template
from tests.conftest import REPO
from tests.scaffold.registry.served_portal import (
    TEMPLATE,
    ServedPortal,
    copy_template,
    served_portal,
    tool_env,
)

pytestmark = pytest.mark.integration
MAX_BODY = 64 * 1024
REFS = "/info/refs?service=git-upload-pack"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPortal]:
    root = tmp_path_factory.mktemp("portal")
    copy_template(root / "templates")
    with served_portal(root / "var", root / "templates", max_body_bytes=str(MAX_BODY)) as served:
        yield served


def git(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], env=tool_env(home), capture_output=True, text=True, timeout=60, check=check
    )


def repo_url(portal: ServedPortal, name: str = TEMPLATE) -> str:
    return f"{portal.url}/templates.git/{name}.git"


@pytest.mark.parametrize("protocol", ["2", "0"])
def test_a_template_repository_clones_over_http(
    portal: ServedPortal, tmp_path: Path, protocol: str
) -> None:
    clone = tmp_path / "clone"

    git(
        tmp_path / "home",
        "-c",
        f"protocol.version={protocol}",
        "clone",
        repo_url(portal),
        str(clone),
    )

    assert (clone / "copier.yml").is_file() and (clone / "template.yaml").is_file()
    tags = git(tmp_path / "home", "-C", str(clone), "tag").stdout.split()
    assert tags == [f"v{load_template(REPO / 'templates' / TEMPLATE).version}"]
    remote = git(tmp_path / "home", "ls-remote", "--tags", repo_url(portal)).stdout
    assert "refs/tags/v" in remote


def test_an_unknown_template_is_not_found(portal: ServedPortal, tmp_path: Path) -> None:
    status, body = portal.request("GET", f"/templates.git/no-such-template.git{REFS}")
    assert status == 404 and b"no-such-template" in body

    failed = git(
        tmp_path / "home", "clone", repo_url(portal, "nope"), str(tmp_path / "c"), check=False
    )
    assert failed.returncode != 0 and "not found" in failed.stderr


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "%2e%2e",
        "..%2Fgitops%2Fremote",
        "..%2F..%2Fvar%2Fgitops%2Fremote",
        "git",  # the folder of registered templates' mirrors
        "snapshots",
        "FASTAPI-SERVICE",
        "fastapi-service%00",
        "fastapi-service.git%2F..%2Ffastapi-service",
        "-fastapi-service",
        "%20fastapi-service",
    ],
)
def test_names_that_are_not_a_published_template_are_not_found(
    portal: ServedPortal, name: str
) -> None:
    status, _ = portal.request("GET", f"/templates.git/{name}.git{REFS}")
    assert status == 404
    post = {"Content-Type": REQUEST_MEDIA_TYPE}
    assert (
        portal.request("POST", f"/templates.git/{name}.git/git-upload-pack", b"0000", post)[0]
        == 404
    )


def test_a_repository_of_no_published_template_is_not_served(
    portal: ServedPortal, tmp_path: Path
) -> None:
    # A template dropped from templates/ leaves its repository behind: no longer offered.
    retired = portal.data_dir / "templates" / "retired.git"
    git(tmp_path / "home", "init", "--quiet", "--bare", str(retired))

    assert portal.request("GET", f"/templates.git/retired.git{REFS}")[0] == 404


def test_paths_beside_the_smart_protocol_are_not_served(portal: ServedPortal) -> None:
    base = f"/templates.git/{TEMPLATE}.git"
    for path in ("/HEAD", "/config", "/objects/info/packs", "/../../secret.key", "/info/refs"):
        status, _ = portal.request("GET", base + path)
        assert status in (400, 404), path
    assert portal.request("GET", f"{base}/info/refs?service=git-foo")[0] == 400


def test_pushing_is_refused(portal: ServedPortal, tmp_path: Path) -> None:
    home = tmp_path / "home"
    clone = tmp_path / "clone"
    git(home, "clone", repo_url(portal), str(clone))
    git(home, "-C", str(clone), "commit", "--allow-empty", "-m", "sneaky")

    pushed = git(home, "-C", str(clone), "push", "origin", "HEAD:refs/heads/sneaky", check=False)

    assert pushed.returncode != 0 and "403" in pushed.stderr
    base = f"/templates.git/{TEMPLATE}.git"
    assert portal.request("GET", f"{base}/info/refs?service=git-receive-pack")[0] == 403
    headers = {"Content-Type": "application/x-git-receive-pack-request"}
    assert portal.request("POST", f"{base}/git-receive-pack", b"0000", headers)[0] == 403
    assert "refs/heads/sneaky" not in git(home, "ls-remote", repo_url(portal)).stdout


def test_an_oversized_request_body_is_refused(portal: ServedPortal) -> None:
    target = f"/templates.git/{TEMPLATE}.git/git-upload-pack"
    headers = {"Content-Type": REQUEST_MEDIA_TYPE}
    declared = {**headers, "Content-Length": str(MAX_BODY + 1)}

    assert portal.request("POST", target, b"0000", declared)[0] == 413  # refused before reading
    status, body = portal.request("POST", target, b"0" * (MAX_BODY + 1), headers)
    assert status == 413 and b"PORTAL_MAX_BODY_BYTES" in body
    chunk = b"0" * 4096
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // 4096 + 1))
    chunked = {**headers, "Transfer-Encoding": "chunked"}
    assert portal.request("POST", target, chunks + b"0\r\n\r\n", chunked)[0] == 413


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b"0000", {"Content-Type": "application/json"}, 415),
        (b"0000", {"Content-Type": "application/x-www-form-urlencoded"}, 403),  # no CSRF token
        (b"0000", {"Content-Type": REQUEST_MEDIA_TYPE, "Content-Encoding": "br"}, 400),
        (b"0000", {"Content-Type": REQUEST_MEDIA_TYPE, "Git-Protocol": "version=2 x"}, 400),
        (b"0000", {"Content-Type": REQUEST_MEDIA_TYPE, "Git-Protocol": "$(id)"}, 400),
        (b"not gzip", {"Content-Type": REQUEST_MEDIA_TYPE, "Content-Encoding": "gzip"}, None),
        (
            gzip.compress(b"garbage", mtime=0),
            {"Content-Type": REQUEST_MEDIA_TYPE, "Content-Encoding": "gzip"},
            None,
        ),
        (b"garbage", {"Content-Type": REQUEST_MEDIA_TYPE}, None),
        (b"0032want " + b"f" * 40 + b"\n0000", {"Content-Type": REQUEST_MEDIA_TYPE}, None),
    ],
)
def test_malformed_requests_are_refused_never_a_server_error(
    portal: ServedPortal, body: bytes, headers: dict[str, str], expected: int | None
) -> None:
    status, _ = portal.request(
        "POST", f"/templates.git/{TEMPLATE}.git/git-upload-pack", body, headers
    )

    assert status < 500
    if expected is not None:
        assert status == expected
