"""The fleet test template (``tests/data/fleet-template``) as a git repository of its versions.

Each version folder becomes one commit with an annotated tag ``v<N>.0.0`` (as the portal
publishes bundled templates), so ``copier copy`` and ``copier update`` see real versions.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

FLEET_TEMPLATE = Path(__file__).resolve().parent / "data" / "fleet-template"
TEMPLATE_NAME = "fleet-template"
_IDENTITY = ("-c", "user.name=Fleet Tests", "-c", "user.email=fleet-tests@example.com")
_NO_SIGNING = ("-c", "commit.gpgSign=false", "-c", "tag.gpgSign=false")


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and no signing; return its output."""
    command = ["git", "-C", str(repo), *_IDENTITY, *_NO_SIGNING, *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def _replace_tree(repo: Path, source: Path) -> None:
    for path in repo.iterdir():
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(source, repo, dirs_exist_ok=True)


def _commit_and_tag(repo: Path, tag: str, message: str) -> None:
    # An empty index first: a file rewritten in the same second with the same size (the
    # changed memory limit) looks unchanged to git's index otherwise, and is not committed.
    git(repo, "read-tree", "--empty")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--message", message)
    git(repo, "tag", "--annotate", "--message", message, "--end-of-options", tag)


def template_repo(tmp: Path, versions: tuple[str, ...] = ("v1", "v2", "v3")) -> Path:
    """Commit the folders ``versions`` in order to a new repository under ``tmp``; return it.

    The commit of folder ``vN`` is tagged ``vN.0.0`` (an annotated tag).
    """
    repo = tmp / TEMPLATE_NAME
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    for version in versions:
        _replace_tree(repo, FLEET_TEMPLATE / version)
        _commit_and_tag(repo, f"{version}.0.0", f"{TEMPLATE_NAME} {version}")
    return repo


def add_version(
    repo: Path, tag: str, copier_yml_extra: str, files: Mapping[str, str] | None = None
) -> None:
    """Commit a new version on top of the newest one: ``copier.yml`` plus ``copier_yml_extra``.

    Used for versions that need what no folder holds (``_tasks``, ``_migrations``);
    ``files`` (relative paths to text) are added to the template's repository too.
    """
    for relative, text in (files or {}).items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    copier_yml = repo / "copier.yml"
    copier_yml.write_text(copier_yml.read_text() + "\n" + copier_yml_extra)
    manifest = repo / "template.yaml"
    lines = manifest.read_text().splitlines(keepends=True)
    version = tag.removeprefix("v")
    manifest.write_text(
        "".join(f"version: {version}\n" if line.startswith("version:") else line for line in lines)
    )
    _commit_and_tag(repo, tag, f"{TEMPLATE_NAME} {tag}")
