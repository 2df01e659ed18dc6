"""``copier update`` of one service in the Copier workers, with real git and real Copier.

Services are generated at v1 of the fleet test template (``tests/data/fleet-template``) by
the portal's own render, then updated to v3; each result is compared with what the venv's
``copier update`` command makes by hand of the same files in a git repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import RenderTimeoutError, render
from portal.integrations.copier_answers import RecordedSource
from portal.integrations.copier_update import (
    Conflict,
    UpdateError,
    UpdateResult,
    UpdateTimeoutError,
    conflicts_in,
    update_service,
)
from portal.scaffold.registry.manifest import load_template
from tests.fleet_versions import FLEET_TEMPLATE, TEMPLATE_NAME, add_version, git, template_repo

ANSWERS = ".copier-answers.yml"
CANONICAL = "https://git.example.invalid/platform/fleet-template.git"
MEMORY_LINE = b"              memory: 128Mi\n"
COLLIDING_HUNK = (
    "<<<<<<< before updating\n"
    "              memory: 192Mi\n"
    "=======\n"
    "              memory: 256Mi\n"
    ">>>>>>> after updating\n"
)


@pytest.fixture(scope="module", autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    copier_integration.shutdown()


@pytest.fixture(autouse=True)
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where update_service makes its scratch folder during the test (checked empty after)."""
    root = tmp_path / "scratch-root"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture(scope="module")
def fleet_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return template_repo(tmp_path_factory.mktemp("fleet"))


def read_folder(folder: Path) -> dict[str, bytes]:
    """Return every file under ``folder`` but its ``.git``, by relative POSIX path."""
    files = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if path.is_file() and relative.parts[0] != ".git":
            files[relative.as_posix()] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def generated_v1(fleet_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The service ``shop`` as the portal generated it at v1 (answers record the local repo)."""
    dest = tmp_path_factory.mktemp("generated") / "shop"
    render(str(fleet_repo), "v1.0.0", {"name": "shop"}, dest)
    return read_folder(dest)


def by_hand(folder: Path, files: Mapping[str, bytes], to_ref: str) -> dict[str, bytes]:
    """Run the venv's ``copier update`` CLI on ``files`` committed in a new git repository."""
    folder.mkdir()
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", "--all")
    git(folder, "commit", "--quiet", "--message", "the service")
    settings = folder.parent / "empty-copier-settings.yml"
    settings.write_text("{}\n")
    copier = Path(sys.executable).parent / "copier"
    subprocess.run(
        [str(copier), "update", "--defaults", "--conflict", "inline", "--vcs-ref", to_ref, "."],
        cwd=folder,
        env={**os.environ, "COPIER_SETTINGS_PATH": str(settings)},
        check=True,
        capture_output=True,
    )
    return read_folder(folder)


def recorded(result: UpdateResult) -> dict[str, object]:
    answers = yaml.safe_load(result.files[ANSWERS])
    assert isinstance(answers, dict)
    return answers


def test_a_service_generated_at_v1_is_updated_to_v3(
    fleet_repo: Path, generated_v1: dict[str, bytes], tmp_path: Path, scratch_root: Path
) -> None:
    result = update_service(str(fleet_repo), "v3.0.0", generated_v1)

    assert sorted(result.files) == [
        ANSWERS,
        "README.md",
        "app/settings.yaml",  # renamed from app/config.yaml in v2
        "k8s/deployment.yaml",
        "k8s/kustomization.yaml",
        "k8s/pdb.yaml",  # new in v3
    ]
    assert result.deleted == ("NOTES.md", "app/config.yaml")  # deleted and renamed in v2
    assert result.changed == (
        ANSWERS,
        "app/settings.yaml",
        "k8s/deployment.yaml",
        "k8s/kustomization.yaml",
        "k8s/pdb.yaml",
    )
    assert result.files["app/settings.yaml"] == generated_v1["app/config.yaml"]
    assert b"              memory: 256Mi\n" in result.files["k8s/deployment.yaml"]
    assert b"  replicas: 1\n" in result.files["k8s/deployment.yaml"]
    assert b"  - pdb.yaml\n" in result.files["k8s/kustomization.yaml"]
    pdb = yaml.safe_load(result.files["k8s/pdb.yaml"])
    assert pdb["kind"] == "PodDisruptionBudget" and pdb["spec"]["maxUnavailable"] == 1
    assert recorded(result) == {
        "_commit": "v3.0.0",
        "_src_path": str(fleet_repo),
        "max_unavailable": 1,  # the new question's default
        "name": "shop",
        "owner": "platform-team",
        "replicas": 1,  # the recorded answer, not v2's new default (2)
    }
    assert (result.from_commit, result.to_commit) == ("v1.0.0", "v3.0.0")
    assert result.conflicts == () and result.executable == () and result.warnings == ()
    assert list(scratch_root.iterdir()) == []
    assert result.files == by_hand(tmp_path / "by-hand", generated_v1, "v3.0.0")


def test_local_edits_survive_and_a_colliding_one_is_a_conflict(
    fleet_repo: Path, generated_v1: dict[str, bytes], tmp_path: Path
) -> None:
    edited = dict(generated_v1)
    edited["README.md"] += b"\nOn call: #shop-oncall.\n"
    edited["k8s/deployment.yaml"] = edited["k8s/deployment.yaml"].replace(
        MEMORY_LINE, b"              memory: 192Mi\n"
    )
    edited["bin/smoke.sh"] = b"#!/bin/sh\ncurl -f http://shop/healthz\n"

    result = update_service(str(fleet_repo), "v3.0.0", edited, executable={"bin/smoke.sh"})

    assert result.files["README.md"] == edited["README.md"]
    assert result.files["bin/smoke.sh"] == edited["bin/smoke.sh"]
    assert result.executable == ("bin/smoke.sh",)
    assert "README.md" not in result.changed and "bin/smoke.sh" not in result.changed
    assert result.conflicts == (
        Conflict("k8s/deployment.yaml", "markers", (COLLIDING_HUNK,), (24,)),
    )
    assert result.files == by_hand(tmp_path / "by-hand", edited, "v3.0.0")


def test_the_canonical_source_is_recorded_and_batch_answers_override(
    fleet_repo: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "shop"  # generated as the portal does: the canonical URL recorded
    render(str(fleet_repo), "v1.0.0", {"name": "shop"}, dest, source=RecordedSource(CANONICAL))
    files = read_folder(dest)

    kept = update_service(str(fleet_repo), "v2.0.0", files, answers={"replicas": 3})
    moved = RecordedSource("https://git.example.invalid/templates/fleet.git")
    recorded_anew = update_service(str(fleet_repo), "v3.0.0", files, source=moved)

    assert recorded(kept)["_src_path"] == CANONICAL  # never the local repository
    assert recorded(kept)["_commit"] == "v2.0.0" and recorded(kept)["replicas"] == 3
    assert b"  replicas: 3\n" in kept.files["k8s/deployment.yaml"]
    assert "k8s/pdb.yaml" not in kept.files and "app/settings.yaml" in kept.files
    assert recorded(recorded_anew)["_src_path"] == moved.url
    assert recorded(recorded_anew)["_commit"] == "v3.0.0"


def test_a_batch_answer_the_template_rejects_is_copiers_message(
    fleet_repo: Path, generated_v1: dict[str, bytes], scratch_root: Path
) -> None:
    with pytest.raises(UpdateError) as rejected:
        update_service(str(fleet_repo), "v3.0.0", generated_v1, answers={"replicas": 99})
    message = str(rejected.value)
    assert message.startswith("Copier failed to update .copier-answers.yml from v1.0.0 to v3.0.0")
    assert "must be between 1 and 10" in message
    assert list(scratch_root.iterdir()) == []


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ('_tasks:\n  - "touch tasks-ran"\n', "has tasks (_tasks)"),
        (
            "_migrations:\n  - version: v4.0.0\n    command: touch migration-ran\n",
            "has migrations (_migrations)",
        ),
    ],
)
def test_a_version_with_tasks_or_migrations_is_refused(
    setting: str, says: str, generated_v1: dict[str, bytes], tmp_path: Path, scratch_root: Path
) -> None:
    repo = template_repo(tmp_path)
    add_version(repo, "v4.0.0", setting)

    with pytest.raises(UpdateError) as refused:
        update_service(str(repo), "v4.0.0", generated_v1)

    assert str(refused.value) == (
        f"v4.0.0 of fleet-template {says}, which the portal never runs; nothing was written"
    )
    assert list(scratch_root.iterdir()) == []


def test_tasks_plain_yaml_cannot_see_are_refused_by_copier(
    generated_v1: dict[str, bytes], tmp_path: Path, scratch_root: Path
) -> None:
    repo = template_repo(tmp_path)  # Copier's own `!include`: the portal's YAML reading skips it
    unsafe = {"includes/unsafe.yml": '_tasks:\n  - "touch tasks-ran"\n'}
    add_version(repo, "v4.0.0", "--- !include includes/unsafe.yml\n", unsafe)

    with pytest.raises(UpdateError) as refused:
        update_service(str(repo), "v4.0.0", generated_v1)

    assert str(refused.value) == (
        "v4.0.0 of fleet-template is refused (Copier: Template uses potentially unsafe "
        "feature: tasks): the portal never runs tasks, migrations or Jinja extensions; "
        "nothing was written"
    )
    assert list(scratch_root.iterdir()) == []


@pytest.mark.parametrize("ref", ["-v3.0.0", "--output=x", "v1.0.0..v3.0.0", "v3.0.0\0"])
def test_a_hostile_target_ref_is_refused(
    ref: str, fleet_repo: Path, generated_v1: dict[str, bytes]
) -> None:
    with pytest.raises(UpdateError, match=r"^target version .* is refused"):
        update_service(str(fleet_repo), ref, generated_v1)


def test_a_hostile_recorded_commit_is_refused(
    fleet_repo: Path, generated_v1: dict[str, bytes]
) -> None:
    files = dict(generated_v1)
    files[ANSWERS] = files[ANSWERS].replace(b"_commit: v1.0.0", b"_commit: --upload-pack=touch")
    with pytest.raises(UpdateError, match=r"^\.copier-answers\.yml _commit .* is refused"):
        update_service(str(fleet_repo), "v3.0.0", files)


def test_an_old_version_missing_from_the_repository_is_named(
    generated_v1: dict[str, bytes], tmp_path: Path
) -> None:
    repo = template_repo(tmp_path, versions=("v2", "v3"))  # v1.0.0 was never published here
    with pytest.raises(UpdateError) as missing:
        update_service(str(repo), "v3.0.0", generated_v1)
    assert str(missing.value) == (
        "the template's repository has no v1.0.0 (the version .copier-answers.yml records)"
    )


def test_a_missing_target_version_is_named(
    fleet_repo: Path, generated_v1: dict[str, bytes]
) -> None:
    with pytest.raises(UpdateError, match=r"^the template's repository has no v9\.0\.0 to upd"):
        update_service(str(fleet_repo), "v9.0.0", generated_v1)


def test_a_service_without_answers_or_recorded_version_is_refused(
    fleet_repo: Path, generated_v1: dict[str, bytes]
) -> None:
    without = {path: data for path, data in generated_v1.items() if path != ANSWERS}
    with pytest.raises(UpdateError, match=r"^\.copier-answers\.yml: missing, so the service"):
        update_service(str(fleet_repo), "v3.0.0", without)
    no_commit = dict(generated_v1)
    no_commit[ANSWERS] = b"_src_path: /nowhere\nname: shop\n"
    with pytest.raises(UpdateError, match=r"^\.copier-answers\.yml: records no _commit"):
        update_service(str(fleet_repo), "v3.0.0", no_commit)


def test_a_path_leaving_the_service_is_refused(
    fleet_repo: Path, generated_v1: dict[str, bytes], scratch_root: Path
) -> None:
    for path in ("../escape.txt", ".git/config", "/etc/passwd"):
        with pytest.raises(UpdateError, match="is refused"):
            update_service(str(fleet_repo), "v3.0.0", {**generated_v1, path: b"x"})
    assert list(scratch_root.iterdir()) == []


def test_an_update_past_its_timeout_is_stopped(
    fleet_repo: Path, generated_v1: dict[str, bytes], scratch_root: Path
) -> None:
    with pytest.raises(UpdateTimeoutError) as stopped:
        update_service(str(fleet_repo), "v3.0.0", generated_v1, timeout=0.001)
    assert isinstance(stopped.value, RenderTimeoutError)
    assert list(scratch_root.iterdir()) == []


# conflicts_in: plain data, no Copier needed.


def test_inline_markers_are_conflicts_with_their_lines() -> None:
    text = (
        b"a: 1\n"
        b"<<<<<<< before updating\nb: mine\n=======\nb: theirs\n>>>>>>> after updating\n"
        b"c: 3\n"
        b"<<<<<<< before updating\nd: mine\n||||||| last update\nd: old\n=======\n"
        b">>>>>>> after updating\n"
    )
    (conflict,) = conflicts_in({"values.yaml": text, "clean.yaml": b"a: 1\n"})
    assert conflict.path == "values.yaml" and conflict.kind == "markers"
    assert conflict.lines == (2, 8)
    assert conflict.hunks == (
        "<<<<<<< before updating\nb: mine\n=======\nb: theirs\n>>>>>>> after updating\n",
        "<<<<<<< before updating\nd: mine\n||||||| last update\nd: old\n=======\n"
        ">>>>>>> after updating\n",
    )


def test_a_rej_file_is_a_conflict_with_its_content() -> None:
    rejected = b"diff a/app.yaml b/app.yaml\t(rejected hunks)\n@@ -1 +1 @@\n-a\n+b\n"
    assert conflicts_in({"app.yaml": b"a\n", "app.yaml.rej": rejected}) == (
        Conflict("app.yaml.rej", "rej", (rejected.decode(),)),
    )


def test_a_markdown_underline_and_other_markers_are_not_conflicts() -> None:
    files = {
        "README.md": b"Title\n=======\n\nText.\n",
        "merge.txt": b"<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> main\n",  # git's, not Copier's
        "logo.png": b"\x89PNG\0<<<<<<< before updating\n",  # binary
    }
    assert conflicts_in(files) == ()


def test_half_resolved_markers_still_count() -> None:
    files = {
        "a.yaml": b"x: 1\n>>>>>>> after updating\n",  # its start was deleted
        "b.yaml": b"<<<<<<< before updating\r\nx: 1\r\n",  # never closed, CRLF lines
    }
    assert conflicts_in(files) == (
        Conflict("a.yaml", "markers", (">>>>>>> after updating\n",), (2,)),
        Conflict("b.yaml", "markers", ("<<<<<<< before updating\r\nx: 1\r\n",), (1,)),
    )


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_each_version_folder_is_a_template_the_portal_accepts(version: str) -> None:
    info = load_template(FLEET_TEMPLATE / version, TEMPLATE_NAME)
    assert info.version == f"{version[1:]}.0.0" and info.deploys is False
    assert [field.name for field in info.questions][:3] == ["name", "owner", "replicas"]
