"""A tiny Copier template in a real git repository, shared by the Copier tests."""

from __future__ import annotations

from pathlib import Path

from portal.integrations.git import run_git

COPIER_YML = """\
_min_copier_version: "9.4.0"
_subdirectory: template
name:
  type: str
  validator: "{% if name != name | lower %}must be lower case{% endif %}"
greeting:
  type: str
  default: hello
"""
FILES = {
    "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
    "template/README.md.jinja": "{{ greeting }} from {{ name }}\n",
    "template/deploy/{{ name }}.yaml.jinja": "name: {{ name }}\n",
}


def make_repo(
    folder: Path,
    copier_yml: str = COPIER_YML,
    *,
    extra: dict[str, str] | None = None,
    executable: tuple[str, ...] = (),
) -> str:
    """Commit a template (``FILES`` plus ``extra``) in a new repository, tagged ``v1.0.0``."""
    folder.mkdir(parents=True)
    (folder / "copier.yml").write_text(copier_yml)
    for relative, content in (FILES | (extra or {})).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    for relative in executable:
        (folder / relative).chmod(0o755)
    options = ("-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git("init", "--quiet", "--initial-branch=main", str(folder))
    run_git(*options, "add", "--all")
    run_git(*options, "commit", "--quiet", "-m", "template")
    run_git(*options, "tag", "v1.0.0")
    return str(folder)
