"""Bootstrapping the GitOps remote and clone, and keeping remote credentials secret."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.gitops import (
    GitOpsError,
    GitOpsRepo,
)
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.gitops_plumbing import RemoteUrl
from tests.integrations.gitops_support import (
    ANN,
    REX,
    SEED,
    git,
    make_settings,
    remote_dir,
    remote_sha,
    seed_files,
    service_files,
)
from tests.loopback_http import serving

# bootstrap -----------------------------------------------------------------------------


def test_bootstrap_seeds_main_with_one_commit_of_the_seed(
    settings: Settings, repo: GitOpsRepo
) -> None:
    assert repo.list_files("main") == seed_files()
    assert "clusters/prod/services/.gitkeep" in repo.list_files("main", "clusters/prod")
    assert repo.read_file("main", "README.md") == (SEED / "README.md").read_bytes()
    remote = str(remote_dir(settings))
    assert git("--git-dir", remote, "rev-list", "--count", "main") == "1"
    assert git("--git-dir", remote, "config", "receive.denyNonFastForwards") == "true"
    assert git("--git-dir", remote, "log", "-1", "--format=%an <%ae>", "main") == (
        f"{settings.git_author_name} <{settings.git_author_email}>"
    )


def test_bootstrap_is_idempotent_and_never_reseeds(settings: Settings, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/one", service_files("one"), "Add one", ANN)
    merged = repo.merge("scaffold/one", "Merge one", REX)

    again = bootstrap_gitops(settings)
    assert again.resolve("main") == merged == remote_sha(settings, "main")

    # A lost clone is rebuilt from the remote, which keeps its history.
    subprocess.run(["rm", "-rf", str(settings.data_dir / "gitops" / "work")], check=True)
    rebuilt = bootstrap_gitops(settings)
    assert rebuilt.resolve("main") == merged
    assert rebuilt.branch_exists("scaffold/one")


def test_bootstrap_without_seed_dir_names_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var").model_copy(
        update={"gitops_seed_dir": tmp_path / "nope"}
    )
    with pytest.raises(GitOpsError, match="nope"):
        bootstrap_gitops(settings)


def test_bootstrap_clones_a_configured_remote(tmp_path: Path, settings: Settings) -> None:
    origin = bootstrap_gitops(settings)
    url = remote_dir(settings).resolve().as_uri()

    replica_settings = make_settings(tmp_path / "replica", remote=url)
    replica = bootstrap_gitops(replica_settings)
    assert not (tmp_path / "replica" / "gitops" / "remote.git").exists()
    assert replica.resolve("main") == origin.resolve("main")

    sha = replica.create_branch("scaffold/from-replica", service_files("r"), "Add r", ANN)
    assert remote_sha(settings, "refs/heads/scaffold/from-replica") == sha


def loose_objects(git_dir: Path) -> int:
    """How many objects of ``git_dir`` are files of their own rather than in a pack."""
    counts = git("--git-dir", str(git_dir), "count-objects", "-v")
    return int(dict(line.split(": ") for line in counts.splitlines())["count"])


def test_a_fetch_lands_as_one_pack_so_readers_never_see_half_of_it(
    tmp_path: Path, settings: Settings
) -> None:
    """Unpacked, a fetch writes a commit before its trees: another thread could export it
    half-written ("Could not read <sha>", seen with two replicas). A pack appears at once."""
    origin = bootstrap_gitops(settings)
    replica_settings = make_settings(tmp_path / "replica", remote=remote_dir(settings).as_uri())
    replica = bootstrap_gitops(replica_settings)
    clone = tmp_path / "replica" / "gitops" / "work"
    assert git("--git-dir", str(clone), "config", "fetch.unpackLimit") == "1"
    assert loose_objects(clone) == 0

    sha = origin.create_branch("scaffold/small", service_files("small"), "Add small", ANN)
    assert replica.resolve("scaffold/small") == sha  # fetched: a few objects, well under 100
    assert loose_objects(clone) == 0


@pytest.mark.parametrize(
    ("url", "public", "hidden"),
    [
        ("https://x-access-token:tok123@h.example/o/r.git", "https://h.example/o/r.git", "tok123"),
        ("https://glpat-abcdef@h.example/o/r.git", "https://h.example/o/r.git", "glpat-abcdef"),
        ("ssh://deploy:pa55word@h.example/r.git", "ssh://deploy@h.example/r.git", "pa55word"),
        ("ssh://git@h.example/o/r.git", "ssh://git@h.example/o/r.git", None),
        ("git@h.example:o/r.git", "git@h.example:o/r.git", None),
        ("file:///srv/git/r.git", "file:///srv/git/r.git", None),
    ],
)
def test_remote_urls_keep_credentials_out_of_their_public_form(
    url: str, public: str, hidden: str | None
) -> None:
    remote = RemoteUrl.parse(url)
    assert remote.public == public
    if hidden is None:
        assert remote.env() == {}
    else:
        assert hidden not in public and hidden not in repr(remote) and url not in repr(remote)
        assert remote.redact(f"fatal: could not read from {url}").count(hidden) == 0
        assert f"url.{url}.insteadOf" in remote.env().values()


class _RecordingGitServer(BaseHTTPRequestHandler):
    """Answers like a git host demanding basic auth, then 404; records what it was sent."""

    seen: list[str] = []  # noqa: RUF012 - one server per test, reset by the test

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        if not self.headers.get("Authorization"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def git_http_server() -> Iterator[str]:
    _RecordingGitServer.seen = []
    with serving(_RecordingGitServer) as port:
        yield f"127.0.0.1:{port}"


def test_remote_credentials_are_used_but_never_stored_or_shown(
    tmp_path: Path, git_http_server: str
) -> None:
    token = "s3cr3t-token-4711"
    remote = f"http://x-access-token:{token}@{git_http_server}/g.git"
    settings = make_settings(tmp_path / "var", remote=remote)

    with pytest.raises(GitOpsError) as failure:
        bootstrap_gitops(settings)

    assert token not in str(failure.value)
    sent = [base64.b64decode(h.split()[1]).decode() for h in _RecordingGitServer.seen if h]
    assert f"x-access-token:{token}" in sent, "the credentials never reached the server"
    for path in (tmp_path / "var").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"token written to {path}"
    work = tmp_path / "var" / "gitops" / "work"
    assert git("--git-dir", str(work), "config", "remote.origin.url") == (
        f"http://{git_http_server}/g.git"
    )
