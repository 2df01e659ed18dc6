"""Snapshots of template commits render exactly what Copier renders from git, only faster."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.integrations import copier as copier_integration
from portal.integrations.copier import RenderError, RenderResult, render
from portal.integrations.copier_snapshot import Snapshot, snapshot_of
from portal.integrations.git import run_git
from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import discover, publish
from tests.conftest import REPO
from tests.integrations.copier_support import COPIER_YML, make_repo

BUNDLED = {info.name: info for info in discover(REPO / "templates")}


@pytest.fixture(scope="module", autouse=True)
def _stop_workers() -> Iterator[None]:
    yield
    copier_integration.shutdown()


def tree_of(dest: Path) -> dict[str, tuple[bytes, bool]]:
    """Every file of a render: its bytes and whether it is executable."""
    return {
        path.relative_to(dest).as_posix(): (path.read_bytes(), os.access(path, os.X_OK))
        for path in sorted(dest.rglob("*"))
        if path.is_file()
    }


def both_ways(
    src: str, ref: str, answers: dict[str, object], root: Path
) -> tuple[RenderResult, RenderResult]:
    """Render from git and through a snapshot; check the outputs are byte for byte equal."""
    name = str(answers["name"])
    from_git = render(src, ref, answers, root / "git" / name)
    snapshots = root / "snapshots"
    from_snapshot = render(src, ref, answers, root / "snap" / name, snapshot_root=snapshots)
    assert tree_of(root / "snap" / name) == tree_of(root / "git" / name)
    assert from_snapshot.files == from_git.files
    assert from_snapshot.template_commit == from_git.template_commit
    assert from_snapshot.warnings == from_git.warnings
    assert not from_git.from_snapshot
    return from_git, from_snapshot


@pytest.mark.parametrize("template", sorted(BUNDLED))
def test_every_bundled_template_renders_the_same_from_its_snapshot(
    template: str, tmp_path: Path
) -> None:
    info = BUNDLED[template]
    published = publish(info, tmp_path / "data")
    raw = {"name": "snap-check", "owner": "platform-team", "description": "Snapshot check"}
    answers, errors = validate_answers(info.questions, raw)
    assert errors == {}
    _, snapped = both_ways(published.src, published.vcs_ref, answers, tmp_path)
    assert snapped.from_snapshot
    recorded = yaml.safe_load(
        (tmp_path / "snap" / "snap-check" / ".copier-answers.yml").read_text()
    )
    assert recorded["_src_path"] == published.src
    assert recorded["_commit"] == published.vcs_ref


def test_a_pinned_commit_with_an_executable_renders_the_same(tmp_path: Path) -> None:
    src = make_repo(
        tmp_path / "tpl",
        extra={"template/run.sh": "#!/bin/sh\necho run\n"},
        executable=("template/run.sh",),
    )
    commit = run_git("-C", src, "rev-parse", "HEAD").strip()
    run_git("-C", src, "update-ref", f"refs/tags/pinned/{commit}", commit)  # as registry.from_git
    _, snapped = both_ways(src, commit, {"name": "shop"}, tmp_path)
    assert snapped.from_snapshot and snapped.template_commit == f"pinned/{commit}"
    assert os.access(tmp_path / "snap" / "shop" / "run.sh", os.X_OK)


def test_a_source_path_yaml_must_quote_and_fold_is_recorded_as_git_would(tmp_path: Path) -> None:
    folder = tmp_path / "templates: the team's own" / ("a long folder name with spaces " * 3)
    src = make_repo(folder / "tpl")
    _, snapped = both_ways(src, "v1.0.0", {"name": "shop"}, tmp_path)
    assert snapped.from_snapshot
    recorded = yaml.safe_load((tmp_path / "snap" / "shop" / ".copier-answers.yml").read_text())
    assert recorded["_src_path"] == src


def test_a_new_tag_on_the_commit_is_recorded_as_git_would(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tpl")
    snapshots = tmp_path / "snapshots"  # where both_ways renders from too
    first = render(src, "v1.0.0", {"name": "a"}, tmp_path / "a", snapshot_root=snapshots)
    assert first.from_snapshot and first.template_commit == "v1.0.0"
    # `git describe` prefers an annotated tag, so Copier would now record v1.0.1.
    options = ("-C", src, "-c", "user.name=t", "-c", "user.email=t@t")
    run_git(*options, "tag", "--annotate", "--message", "again", "v1.0.1")
    _, again = both_ways(src, "v1.0.0", {"name": "b"}, tmp_path)
    assert again.from_snapshot and again.template_commit == "v1.0.1"
    # The snapshot of the old refs was replaced, not kept beside the new one.
    assert len(list(snapshots.iterdir())) == 1


@pytest.mark.parametrize(
    ("copier_yml", "extra", "reason"),
    [
        (COPIER_YML, {"template/REVISION.jinja": "{{ _copier_conf.vcs_ref_hash }}"}, "REVISION"),
        (COPIER_YML, {"template/REF.jinja": "{{ _copier_conf['vcs_ref'] }}"}, "REF"),
        (COPIER_YML, {"template/all.json.jinja": "{{ _copier_answers | to_json }}"}, "answers"),
        (COPIER_YML, {".gitmodules": ""}, "submodules"),
        (COPIER_YML + "_answers_file: .answers-{{ name }}.yml\n", {}, "templated"),
    ],
)
def test_templates_that_could_render_differently_render_from_git(
    copier_yml: str, extra: dict[str, str], reason: str, tmp_path: Path
) -> None:
    src = make_repo(tmp_path / "tpl", copier_yml, extra=extra)
    assert snapshot_of(src, "v1.0.0", tmp_path / "snapshots") is None
    meta = next((tmp_path / "snapshots").glob("*/snapshot.json")).read_text()
    assert reason in meta
    _, result = both_ways(src, "v1.0.0", {"name": "shop"}, tmp_path)
    assert not result.from_snapshot


def test_an_answers_file_of_another_shape_renders_from_git(tmp_path: Path) -> None:
    answers_as_json = {
        "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers|to_json }}"
    }
    src = make_repo(tmp_path / "tpl", extra=answers_as_json)
    assert snapshot_of(src, "v1.0.0", tmp_path / "snapshots") is not None
    _, result = both_ways(src, "v1.0.0", {"name": "shop"}, tmp_path)
    assert not result.from_snapshot  # the answers could not be completed: git rendered it
    assert '"_commit": "v1.0.0"' in (tmp_path / "snap" / "shop" / ".copier-answers.yml").read_text()


def test_a_failing_render_reports_copiers_own_error_and_leaves_nothing(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tpl")
    dest = tmp_path / "shop"
    with pytest.raises(RenderError, match="must be lower case"):
        render(src, "v1.0.0", {"name": "Shop"}, dest, snapshot_root=tmp_path / "s")
    assert not dest.exists()


def test_refs_that_are_not_tags_or_commits_and_urls_render_from_git(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tpl")
    root = tmp_path / "snapshots"
    assert snapshot_of(src, "main", root) is None  # a branch moves: always ask git
    assert snapshot_of(f"git+file://{src}", "v1.0.0", root) is None
    assert snapshot_of(str(tmp_path / "missing"), "v1.0.0", root) is None
    assert snapshot_of(src, "v9.9.9", root) is None
    assert not root.exists()


def test_a_snapshot_is_built_once_even_by_concurrent_renders(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tpl")
    root = tmp_path / "snapshots"
    found: list[Snapshot | None] = []
    threads = [
        threading.Thread(target=lambda: found.append(snapshot_of(src, "v1.0.0", root)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and len(set(found)) == 1 and found[0] is not None
    assert [path.name for path in root.iterdir()] == [found[0].tree.parent.name]
    inode = found[0].tree.stat().st_ino
    again = snapshot_of(src, "v1.0.0", root)
    assert again == found[0] and again.tree.stat().st_ino == inode  # reused, not rebuilt
    assert not (found[0].tree / ".git").exists()


def test_builds_abandoned_by_a_dead_process_are_cleared_away(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "tpl")
    root = tmp_path / "snapshots"
    (root / ".building-dead").mkdir(parents=True)
    (root / ".building-busy").mkdir()
    two_hours_ago = time.time() - 7200
    os.utime(root / ".building-dead", (two_hours_ago, two_hours_ago))
    assert snapshot_of(src, "v1.0.0", root) is not None
    assert sorted(path.name for path in root.iterdir() if path.name.startswith(".")) == [
        ".building-busy"  # another process may be building right now
    ]
