"""Bundled templates: discovered in ``templates/`` and published as tagged git repositories."""

import logging
import shutil
from pathlib import Path

import pytest

from portal.integrations.git import run_git
from portal.scaffold.registry.bundled import discover, publish
from portal.scaffold.registry.manifest import TemplateError, load_template
from tests.scaffold.registry.test_manifest import FILES, MANIFEST, TEMPLATES, write_template


def git(repo: Path, *args: str) -> str:
    return run_git("--git-dir", str(repo), *args).strip()


# --- discover ------------------------------------------------------------------------------


def test_discover_reads_the_bundled_templates() -> None:
    infos = {info.name: info for info in discover(TEMPLATES)}
    fastapi = infos["fastapi-service"]
    assert fastapi.title == "FastAPI service"
    assert fastapi.owner == "platform-team"
    assert fastapi.version == "0.5.0"
    assert "fastapi" in fastapi.tags
    assert fastapi.path == TEMPLATES / "fastapi-service"
    assert [q.name for q in fastapi.questions][:3] == ["name", "owner", "system"]


def test_discover_needs_the_folder(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="templates folder does not exist"):
        discover(tmp_path / "missing")


def test_discover_ignores_plain_folders_and_sorts(tmp_path: Path) -> None:
    write_template(tmp_path / "zeta")
    write_template(tmp_path / "alpha")
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("not a template")
    assert [info.name for info in discover(tmp_path)] == ["alpha", "zeta"]


# --- publish -------------------------------------------------------------------------------


def test_publish_creates_a_tagged_repository(tmp_path: Path) -> None:
    info = load_template(write_template(tmp_path / "src" / "tiny"))
    published = publish(info, tmp_path / "data")
    repo = tmp_path / "data" / "templates" / "tiny.git"
    assert published.repo == repo and published.src == str(repo)
    assert published.tag == published.vcs_ref == "v1.0.0"
    assert published.changed and not published.unreleased_changes
    assert git(repo, "rev-parse", "v1.0.0^{commit}") == published.commit == published.head
    assert git(repo, "rev-parse", "HEAD") == published.commit
    assert git(repo, "cat-file", "-t", "v1.0.0") == "tag"  # annotated
    files = git(repo, "ls-tree", "-r", "--name-only", "v1.0.0").splitlines()
    assert sorted(files) == sorted(["copier.yml", "template.yaml", *FILES])


def test_publish_is_idempotent(tmp_path: Path) -> None:
    folder = write_template(tmp_path / "src" / "tiny")
    (folder / "template" / "__pycache__").mkdir()
    (folder / "template" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    first = publish(load_template(folder), tmp_path / "data")
    again = publish(load_template(folder), tmp_path / "data")
    assert not again.changed
    assert (again.commit, again.head) == (first.commit, first.head)
    assert git(first.repo, "rev-list", "--count", "--all") == "1"
    assert "__pycache__" not in git(first.repo, "ls-tree", "-r", "--name-only", "main")


def test_changed_content_with_the_same_version_keeps_the_tag(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_template(tmp_path / "src" / "tiny")
    first = publish(load_template(folder), tmp_path / "data")
    (folder / "template" / "README.md.jinja").write_text("changed\n")
    with caplog.at_level(logging.WARNING, logger="portal.scaffold.registry.bundled"):
        second = publish(load_template(folder), tmp_path / "data")
    assert second.changed and second.unreleased_changes
    assert second.commit == first.commit  # the tag did not move
    assert second.head != first.commit
    assert git(first.repo, "rev-parse", "v1.0.0^{commit}") == first.commit
    assert git(first.repo, "rev-parse", "main^") == first.commit  # history kept, no rewrite
    assert "v1.0.0 is already published" in caplog.text
    third = publish(load_template(folder), tmp_path / "data")
    assert not third.changed and third.unreleased_changes and third.head == second.head


def test_a_new_version_adds_a_tag(tmp_path: Path) -> None:
    folder = write_template(tmp_path / "src" / "tiny")
    first = publish(load_template(folder), tmp_path / "data")
    (folder / "template" / "README.md.jinja").write_text("v2\n")
    (folder / "template.yaml").write_text(MANIFEST.replace("1.0.0", "1.1.0"))
    second = publish(load_template(folder), tmp_path / "data")
    assert second.tag == "v1.1.0" and second.commit == second.head != first.commit
    assert not second.unreleased_changes
    assert git(first.repo, "tag", "--list").splitlines() == ["v1.0.0", "v1.1.0"]
    assert git(first.repo, "rev-parse", "v1.0.0^{commit}") == first.commit


def test_publish_the_bundled_template(tmp_path: Path) -> None:
    (info,) = [i for i in discover(TEMPLATES) if i.name == "fastapi-service"]
    published = publish(info, tmp_path)
    files = git(published.repo, "ls-tree", "-r", "--name-only", published.tag).splitlines()
    assert "copier.yml" in files and "template/app/main.py" in files
    assert not any("__pycache__" in name for name in files)


def test_copied_template_folder_is_published_from_its_copy(tmp_path: Path) -> None:
    copy = tmp_path / "fastapi-service"
    shutil.copytree(TEMPLATES / "fastapi-service", copy)
    published = publish(load_template(copy), tmp_path / "data")
    assert published.name == "fastapi-service" and published.version == "0.5.0"
