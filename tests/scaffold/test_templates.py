import logging
import shutil
from pathlib import Path

import pytest

from portal.integrations.git import run_git
from portal.scaffold.templates import (
    TemplateError,
    TemplateRefusedError,
    discover,
    load_template,
    publish,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"

COPIER_YML = """\
_min_copier_version: "9.4.0"
_subdirectory: template
name:
  type: str
  help: Service name
greeting:
  type: str
  default: hello
"""
MANIFEST = """\
title: Tiny
description: A tiny template for tests
tags: [test]
owner: platform-team
version: 1.0.0
"""
FILES = {
    "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
    "template/README.md.jinja": "{{ greeting }} from {{ name }}\n",
}


def write_template(
    folder: Path,
    copier_yml: str = COPIER_YML,
    manifest: str | None = MANIFEST,
    files: dict[str, str] | None = None,
) -> Path:
    folder.mkdir(parents=True)
    (folder / "copier.yml").write_text(copier_yml)
    if manifest is not None:
        (folder / "template.yaml").write_text(manifest)
    for relative, content in (FILES if files is None else files).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    return folder


def git(repo: Path, *args: str) -> str:
    return run_git("--git-dir", str(repo), *args).strip()


# --- discover ------------------------------------------------------------------------------


def test_discover_reads_the_bundled_templates() -> None:
    infos = {info.name: info for info in discover(TEMPLATES)}
    fastapi = infos["fastapi-service"]
    assert fastapi.title == "FastAPI service"
    assert fastapi.owner == "platform-team"
    assert fastapi.version == "0.4.0"
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


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (MANIFEST.replace("version: 1.0.0", "version: 1.0"), "template.yaml:5: field 'version'"),
        (MANIFEST.replace("title: Tiny\n", ""), "field 'title' is required"),
        (MANIFEST.replace("owner: platform-team", "owner: [a]"), "template.yaml:4: field 'owner'"),
        (MANIFEST.replace("tags: [test]", "tags: test"), "template.yaml:3: field 'tags'"),
        (MANIFEST + "colour: blue\n", "template.yaml:6: field 'colour' is unknown"),
        ("title: [unclosed\n", "template.yaml:2: invalid YAML"),
        ("- a list\n", "template.yaml: must be a mapping"),
    ],
)
def test_a_bad_manifest_names_the_file_and_field(
    tmp_path: Path, manifest: str, expected: str
) -> None:
    write_template(tmp_path / "tiny", manifest=manifest)
    with pytest.raises(TemplateError) as caught:
        discover(tmp_path)
    assert expected in str(caught.value)
    assert str(tmp_path / "tiny") in str(caught.value)


def test_a_template_without_manifest_is_an_error(tmp_path: Path) -> None:
    write_template(tmp_path / "tiny", manifest=None)
    with pytest.raises(TemplateError, match=r"tiny/template.yaml: missing"):
        discover(tmp_path)


def test_a_bad_question_names_the_copier_file(tmp_path: Path) -> None:
    write_template(tmp_path / "tiny", copier_yml=COPIER_YML + "port:\n  type: integer\n")
    with pytest.raises(TemplateError, match=r"tiny/copier.yml: question 'port': field 'type'"):
        discover(tmp_path)


@pytest.mark.parametrize(
    ("setting", "feature"),
    [
        ("_tasks: ['rm -rf /']", "tasks"),
        ("_migrations:\n  - version: 2.0.0\n    command: echo", "migrations"),
        ("_jinja_extensions: [jinja2_time.TimeExtension]", "Jinja extensions"),
    ],
)
def test_templates_needing_unsafe_features_are_refused(
    tmp_path: Path, setting: str, feature: str
) -> None:
    write_template(tmp_path / "risky", copier_yml=COPIER_YML + setting + "\n")
    with pytest.raises(TemplateRefusedError) as caught:
        load_template(tmp_path / "risky")
    assert str(caught.value).startswith(f"template risky needs {feature} (")
    assert "the portal runs templates with unsafe=False" in str(caught.value)


def test_secret_questions_are_refused(tmp_path: Path) -> None:
    secret = "api_key:\n  type: str\n  secret: true\n  default: ''\n"
    write_template(tmp_path / "leaky", copier_yml=COPIER_YML + secret)
    with pytest.raises(TemplateRefusedError, match="secret question 'api_key'"):
        load_template(tmp_path / "leaky")


def test_links_leaving_the_template_are_refused(tmp_path: Path) -> None:
    folder = write_template(tmp_path / "linky")
    (folder / "template" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(TemplateRefusedError, match="passwd links outside the template"):
        load_template(folder)


def test_subdirectory_must_stay_inside(tmp_path: Path) -> None:
    folder = write_template(tmp_path / "escape", copier_yml="_subdirectory: ../..\n")
    with pytest.raises(TemplateError, match="'_subdirectory' must stay inside"):
        load_template(folder)


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
    with caplog.at_level(logging.WARNING, logger="portal.scaffold.templates"):
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
    assert published.name == "fastapi-service" and published.version == "0.4.0"
