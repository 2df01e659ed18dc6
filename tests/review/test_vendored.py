"""Vendored files: identical to a file of the template (same blob, same name) at the version
the change was rendered from; and "changes since revision N" validation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from portal.review.revisions import Revision, SinceError, since_revision
from portal.review.vendored import TemplateFiles, recorded_commit
from tests.integrations.gitops_support import git

IDENTITY = ("-c", "user.name=T", "-c", "user.email=t@example.org")


def blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def template_repo(tmp_path: Path) -> Path:
    """A template repository: v1.0.0 ships lib.min.js, v2.0.0 a newer one."""
    work = tmp_path / "web-template"
    (work / "template" / "static").mkdir(parents=True)
    (work / "template" / "static" / "lib.min.js").write_bytes(b"var a=1;")
    (work / "template" / "README.md.jinja").write_bytes(b"# {{ name }}\n")
    git("init", "--quiet", "--initial-branch=main", str(work))
    git(*IDENTITY, "add", ".", cwd=work)
    git(*IDENTITY, "commit", "--quiet", "-m", "v1", cwd=work)
    git(*IDENTITY, "tag", "v1.0.0", cwd=work)
    (work / "template" / "static" / "lib.min.js").write_bytes(b"var a=2;")
    git(*IDENTITY, "commit", "--quiet", "-am", "v2", cwd=work)
    git(*IDENTITY, "tag", "v2.0.0", cwd=work)
    return work / ".git"


def test_a_file_is_vendored_when_its_blob_and_name_are_the_templates(tmp_path: Path) -> None:
    repo = template_repo(tmp_path)
    templates = TemplateFiles(lambda name: repo if name == "web" else None)
    tree = templates.tree("web", "1.0.0", ["v1.0.0"])
    assert tree is not None and tree.label == "vendored from template web v1.0.0"
    old, new = blob_sha(b"var a=1;"), blob_sha(b"var a=2;")
    assert tree.match("services/shop/static/lib.min.js", old) == tree.label
    assert tree.match("services/shop/static/lib.min.js", new) is None  # v2's content
    assert tree.match("services/shop/deploy/evil.yaml", old) is None  # same bytes, new name
    newer = templates.tree("web", "2.0.0", ["v2.0.0"])
    assert (
        newer is not None
        and newer.match("a/lib.min.js", new)
        and not newer.match("lib.min.js", old)
    )
    # The first ref the repository has wins: a recorded sha or tag, then v<version>.
    fallback = templates.tree("web", "1.0.0", ["v0.0.1-gone", "v1.0.0"])
    assert fallback is not None and fallback.match("x/lib.min.js", old)


def test_no_template_means_no_vendored_files(tmp_path: Path) -> None:
    repo = template_repo(tmp_path)

    def broken(name: str) -> Path:
        raise RuntimeError("registry down")

    assert TemplateFiles().tree("web", "1.0.0", ["v1.0.0"]) is None
    assert TemplateFiles(lambda name: None).tree("web", "1.0.0", ["v1.0.0"]) is None
    assert TemplateFiles(broken).tree("web", "1.0.0", ["v1.0.0"]) is None
    assert TemplateFiles(lambda name: repo).tree("web", "1.0.0", ["v9.0.0"]) is None
    assert TemplateFiles(lambda name: repo).tree("web", "1.0.0", ["--output=x"]) is None
    assert TemplateFiles(lambda name: repo).tree("", "1.0.0", ["v1.0.0"]) is None  # an edit


def test_the_recorded_commit_is_read_from_the_answers_file() -> None:
    answers = b"# Changes here...\n_commit: v0.3.0\n_src_path: https://portal/t.git\nname: x\n"
    assert recorded_commit(answers) == "v0.3.0"
    assert recorded_commit(b"_commit: '0123abc'\n") == "0123abc"
    assert recorded_commit(b"name: x\n") is None


REVISIONS = (Revision(1, "a" * 40), Revision(2, "b" * 40), Revision(3, "c" * 40))


def test_since_names_an_earlier_revision() -> None:
    assert since_revision(None, REVISIONS) is None and since_revision("", REVISIONS) is None
    assert since_revision("1", REVISIONS) == REVISIONS[0]
    assert since_revision("2", REVISIONS) == REVISIONS[1]


@pytest.mark.parametrize("value", ["3", "0", "4", "-1", "1.0", "abc", "\uff11", "9" * 7, "1 "])
def test_since_refuses_anything_else_naming_the_field(value: str) -> None:
    with pytest.raises(SinceError, match=r"^since: .*revisions 1 to 2 before its last"):
        since_revision(value, REVISIONS)


def test_since_on_a_single_revision_says_there_is_nothing_to_compare() -> None:
    with pytest.raises(SinceError, match="single revision"):
        since_revision("1", REVISIONS[:1])
