"""One template folder read and vetted: its manifest, its questions, the refusals."""

from pathlib import Path

import pytest

from portal.scaffold.registry.bundled import discover
from portal.scaffold.registry.manifest import TemplateError, TemplateRefusedError, load_template

REPO = Path(__file__).resolve().parents[3]
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


# --- manifest and refusals -----------------------------------------------------------------


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
