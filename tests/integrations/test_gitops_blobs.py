"""What the review pages read of commits, on real git: changed blobs, contents, revisions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from portal.integrations.gitops import GitOpsError, GitOpsRepo
from portal.integrations.gitops_blobs import (
    changed_blobs,
    read_blobs,
    resolve_commit,
    revision_chain,
    tree_blobs,
)
from tests.integrations.gitops_support import ANN, git, service_files


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def test_changed_blobs_and_their_contents(repo: GitOpsRepo) -> None:
    first = repo.create_branch("scaffold/b", service_files("b"), "Add b\n\nRevision: 1", ANN)
    revised = {k: v for k, v in service_files("b").items() if "prod" not in k}
    revised["services/b/app.py"] = b"print('revised')\n"
    second = repo.update_branch("scaffold/b", first, revised, "Revise b\n\nRevision: 2", ANN)

    whole = changed_blobs(repo.git_dir, repo.parent_of(second), second)
    assert [blob.path for blob in whole] == sorted(revised)
    assert {blob.status for blob in whole} == {"A"}
    assert all(blob.old_blob is None and blob.new_blob for blob in whole)

    since = {blob.path: blob for blob in changed_blobs(repo.git_dir, first, second)}
    assert sorted(since) == ["clusters/prod/services/b.yaml", "services/b/app.py"]
    app, prod = since["services/b/app.py"], since["clusters/prod/services/b.yaml"]
    assert (app.status, prod.status, prod.new_blob) == ("M", "D", None)
    assert app.new_blob == blob_sha(b"print('revised')\n")
    contents = read_blobs(repo.git_dir, [app.old_blob or "", app.new_blob or "", "not-a-sha"])
    assert contents == {
        blob_sha(b"print('b')\n"): b"print('b')\n",
        blob_sha(b"print('revised')\n"): b"print('revised')\n",
    }
    assert read_blobs(repo.git_dir, []) == {}


def test_the_revision_chain_follows_second_parents(repo: GitOpsRepo) -> None:
    first = repo.create_branch("scaffold/c", service_files("c"), "Add c\n\nRevision: 1", ANN)
    files = service_files("c") | {"services/c/app.py": b"print(2)\n"}
    second = repo.update_branch("scaffold/c", first, files, "Revise c\n\nRevision: 2", ANN)
    files = files | {"services/c/app.py": b"print(3)\n"}
    third = repo.update_branch("scaffold/c", second, files, "Revise c\n\nRevision: 3", ANN)
    chain = revision_chain(repo.git_dir, third)
    assert [commit.sha for commit in chain] == [third, second, first]
    assert "Revision: 2" in chain[1].message and len(chain[2].parents) == 1
    assert [c.sha for c in revision_chain(repo.git_dir, third, limit=2)] == [third, second]


@pytest.mark.parametrize(
    "hostile",
    ["--output={out}", "-p", "{main}..{main}", "{main}~0", "{main}^{{commit}}", "a b", ""],
)
def test_values_git_would_read_as_options_or_ranges_are_refused(
    repo: GitOpsRepo, hostile: str, tmp_path: Path
) -> None:
    main = repo.resolve("main")
    hostile = hostile.format(out=tmp_path / "written", main=main)
    with pytest.raises(GitOpsError):
        changed_blobs(repo.git_dir, hostile, main)
    with pytest.raises(GitOpsError):
        revision_chain(repo.git_dir, hostile)
    with pytest.raises(GitOpsError):
        tree_blobs(repo.git_dir, hostile)
    assert not (tmp_path / "written").exists()


def test_template_trees_and_refs(tmp_path: Path) -> None:
    work = tmp_path / "template"
    (work / "static").mkdir(parents=True)
    (work / "static" / "lib.min.js").write_bytes(b"var a=1;")
    (work / "README.md").write_bytes(b"# T\n")
    git("init", "--quiet", "--initial-branch=main", str(work))
    identity = ("-c", "user.name=T", "-c", "user.email=t@example.org")
    git(*identity, "add", ".", cwd=work)
    git(*identity, "commit", "--quiet", "-m", "v1", cwd=work)
    git(*identity, "tag", "v1.0.0", cwd=work)
    git_dir = work / ".git"
    commit = resolve_commit(git_dir, "v1.0.0")
    assert commit == git("rev-parse", "HEAD", cwd=work)
    assert resolve_commit(git_dir, "v9.9.9") is None
    assert tree_blobs(git_dir, commit) == {
        "README.md": blob_sha(b"# T\n"),
        "static/lib.min.js": blob_sha(b"var a=1;"),
    }
