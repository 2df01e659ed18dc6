"""Folder locations: recursive to a depth limit, git folders, and "0 files read"."""

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from sqlmodel import Session, select

from portal.catalog.folders import MAX_FOLDER_DEPTH
from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, Problem
from portal.config import Settings
from portal.integrations.git import GitError
from portal.integrations.git_sources import GitCatalogReader


def component(name: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {name}
        spec: {{type: service, lifecycle: production, owner: team-a}}
        """)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def commit_repo(work: Path) -> str:
    """Make ``work`` a git repository with everything in it committed on ``main``."""
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "c"]):
        subprocess.run(["git", *identity, *args], cwd=work, check=True, capture_output=True)
    return f"git+file://{work}"


def stored_sources(session: Session) -> dict[str, str]:
    session.expire_all()
    return {e.name: e.source_key for e in session.exec(select(Entity))}


def stored_problems(session: Session) -> list[tuple[str, str]]:
    session.expire_all()
    return [(p.source_key, p.message) for p in session.exec(select(Problem))]


def nested(root: Path, depth: int) -> Path:
    """The folder ``depth`` levels below ``root`` (root itself is level 0)."""
    return root.joinpath(*(f"level{n}" for n in range(1, depth + 1)))


def test_a_folder_import_reads_subfolders(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "catalog"
    write(root / "a.yaml", component("top"))
    write(root / "services" / "team-a" / "billing" / "catalog-info.yaml", component("billing"))
    write(root / "services" / "b.yml", component("b"))
    # Beside catalog files, a walk meets other YAML: passed over, unless it tries to be one.
    openapi = write(root / "services" / "team-a" / "billing" / "openapi.yaml", "openapi: 3.0.0\n")
    write(root / "services" / "values.yaml", "- a list\n---\nreplicas: 2\n")
    broken = write(root / "services" / "broken.yaml", "kind: Component\nmetadata: {name: x}\n")
    write(root / ".github" / "workflows" / "ci.yaml", "on: push\n")  # tooling, skipped
    write(root / ".hidden.yaml", component("hidden"))
    write(tmp_path / "outside" / "o.yaml", component("outside"))
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    report = import_locations(session, [str(root)], settings)
    assert [(p.source, p.field_path) for p in report.problems] == [(str(broken), "apiVersion")]
    assert stored_sources(session) == {
        "top": str(root / "a.yaml"),
        "b": str(root / "services" / "b.yml"),
        "billing": str(root / "services" / "team-a" / "billing" / "catalog-info.yaml"),
    }
    assert report.sources_read == 6
    named = import_locations(session, [str(openapi)], settings)
    assert [(p.source, p.field_path) for p in named.problems] == [
        (str(openapi), "apiVersion"),
        (str(openapi), "kind"),
        (str(openapi), "metadata"),
    ]


def test_folders_below_the_depth_limit_are_reported_not_read(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "catalog"
    deepest = nested(root, MAX_FOLDER_DEPTH)
    write(deepest / "deepest.yaml", component("deepest"))
    write(deepest / "below" / "too-deep.yaml", component("too-deep"))
    report = import_locations(session, [str(root)], settings)
    assert set(stored_sources(session)) == {"deepest"}
    [problem] = report.problems
    assert problem.source == str(root)
    assert problem.message == (
        f"{deepest / 'below'} not read: deeper than {MAX_FOLDER_DEPTH} folders below {root}"
    )


def test_a_folder_without_catalog_files_is_a_problem(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "empty"
    write(root / "notes.txt", "no catalog here\n")
    write(root / "docs" / "index.md", "# docs\n")
    report = import_locations(session, [str(root)], settings)
    [problem] = report.problems
    assert problem.source == str(root)
    assert problem.message.startswith("0 files read: no *.yaml or *.yml file in the folder")
    assert stored_problems(session) == [(str(root), problem.message)]
    write(root / "docs" / "catalog-info.yaml", component("documented"))
    assert import_locations(session, [str(root)], settings).problems == []
    assert stored_problems(session) == []  # the folder's problem went with its cause


def test_a_git_location_naming_a_folder_reads_its_files(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    write(work / "catalog" / "a.yaml", component("git-a"))
    write(work / "catalog" / "teams" / "b.yml", component("git-b"))
    write(work / "catalog" / "README.md", "# not a catalog file\n")
    write(work / "catalog" / ".ci" / "lint.yaml", "rules: {}\n")
    write(work / "catalogue.yaml", component("beside-the-folder"))
    (work / "catalog" / "link.yaml").symlink_to("a.yaml")  # a link's blob is its target's name
    url = commit_repo(work)
    report = import_locations(session, [f"{url}#main:catalog"], settings)
    assert report.problems == []
    assert stored_sources(session) == {
        "git-a": f"{url}#main:catalog/a.yaml",
        "git-b": f"{url}#main:catalog/teams/b.yml",
    }
    assert report.roots == [f"{url}#main:catalog"]
    whole = import_locations(session, [f"{url}#main:."], settings)
    assert whole.problems == [] and whole.sources_read == 3  # the repository's root folder


def test_git_folder_depth_limit_and_zero_files(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    deepest = nested(work / "catalog", MAX_FOLDER_DEPTH)
    write(deepest / "deepest.yaml", component("deepest"))
    write(deepest / "below" / "too-deep.yaml", component("too-deep"))
    write(work / "docs" / "index.md", "# docs\n")
    url = commit_repo(work)
    report = import_locations(session, [f"{url}#main:catalog"], settings)
    assert set(stored_sources(session)) == {"deepest"}
    [problem] = report.problems
    below = deepest.relative_to(work) / "below"
    assert problem.source == f"{url}#main:catalog"
    assert problem.message == (
        f"{url}#main:{below} not read: deeper than {MAX_FOLDER_DEPTH} folders below "
        f"{url}#main:catalog"
    )
    empty = import_locations(session, [f"{url}#main:docs"], settings)
    [zero] = empty.problems
    assert zero.source == f"{url}#main:docs" and zero.message.startswith("0 files read")


def test_an_unreachable_git_folder_orphans_nothing(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    write(work / "catalog" / "a.yaml", component("kept"))
    url = commit_repo(work)
    assert import_locations(session, [f"{url}#main:catalog"], settings).problems == []
    # A new reader (a fresh cache) cannot fetch the repository any more.
    settings = settings.model_copy(update={"data_dir": tmp_path / "other-data"})
    shutil.rmtree(work / ".git")
    report = import_locations(session, [f"{url}#main:catalog"], settings)
    assert report.orphaned == 0 and report.roots == []
    [problem] = report.problems
    assert problem.source == f"{url}#main:catalog"
    session.expire_all()
    kept = session.exec(select(Entity).where(Entity.name == "kept")).one()
    assert not kept.orphan


def test_a_location_target_naming_a_folder_reads_it(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = write(
        tmp_path / "all.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\n"
        "spec: {targets: [./teams]}\n",
    )
    (tmp_path / "teams").mkdir()
    [empty] = import_locations(session, [str(root)], settings).problems
    assert (empty.source, empty.message.partition(":")[0]) == (
        str(root),
        f"0 files read from {tmp_path / 'teams'}",
    )
    write(tmp_path / "teams" / "a" / "svc.yaml", component("in-a-target-folder"))
    report = import_locations(session, [str(root)], settings)
    assert report.problems == [] and stored_problems(session) == []
    assert stored_sources(session)["in-a-target-folder"] == str(tmp_path / "teams/a/svc.yaml")


def test_git_folder_listing_keeps_values_apart_from_options(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    write(work / "catalog" / "a.yaml", component("a"))
    url = commit_repo(work).removeprefix("git+")
    reader = GitCatalogReader(tmp_path / "cache")
    assert reader.list_folder(url, "main", "catalog") == ["a.yaml"]
    # Pathspec magic is read literally: no folder has this name, so nothing is listed.
    assert reader.list_folder(url, "main", ":(glob)**") is None
    written = tmp_path / "written"
    with pytest.raises(GitError, match="may not start with '-'"):
        reader.list_folder(url, f"--output={written}", "catalog")
    with pytest.raises(GitError, match=r"'\.\.' segments"):
        reader.list_folder(url, "main", "catalog/../..")
    assert not written.exists()
