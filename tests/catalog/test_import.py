"""Import behaviour: idempotence, orphans, rejected documents, conflicts, git locations."""

import subprocess
import textwrap
from pathlib import Path

import pytest
from sqlmodel import Session, select

from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, Problem
from portal.config import Settings


def component(name: str, owner: str = "team-a", extra: str = "") -> str:
    return textwrap.dedent(f"""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {name}
        spec:
          type: service
          lifecycle: production
          owner: {owner}
        {extra}""")


def write(path: Path, *documents: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n".join(documents), encoding="utf-8")
    return path


def entity(session: Session, ref: str) -> Entity | None:
    session.expire_all()
    return session.exec(select(Entity).where(Entity.ref == ref)).first()


def test_invalid_document_is_reported_and_the_rest_imports(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    bad = component("broken").replace("  owner: team-a\n", "")
    file = write(tmp_path / "c.yaml", component("first"), bad, component("third"))
    report = import_locations(session, [str(file)], settings)
    assert report.added == 2
    [problem] = report.problems
    assert (problem.source, problem.doc_index, problem.field_path) == (str(file), 1, "spec.owner")
    assert problem.message == "is required"
    assert problem.line == 14  # the spec: line of document 1 (owner itself is missing)
    assert entity(session, "component:default/first") is not None
    assert entity(session, "component:default/third") is not None


def test_error_names_file_document_line_and_field(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    doc = component("svc").replace("owner: team-a", "owner: 'a:b:c'")
    file = write(tmp_path / "c.yaml", component("ok"), doc)
    [problem] = import_locations(session, [str(file)], settings).problems
    assert problem.doc_index == 1
    assert problem.field_path == "spec.owner"
    assert problem.line == 17  # document 1 starts after "---" on line 9; owner is its 8th line
    stored = session.exec(select(Problem)).one()
    assert stored.field_path == "spec.owner" and stored.source_key == str(file)
    assert str(problem).startswith(f"{file} document 1 line")


def test_removed_entity_is_orphaned_not_deleted(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "c.yaml", component("keep"), component("gone"))
    import_locations(session, [str(file)], settings)
    write(file, component("keep"))
    report = import_locations(session, [str(file)], settings)
    assert report.orphaned == 1
    gone = entity(session, "component:default/gone")
    assert gone is not None and gone.orphan
    write(file, component("keep"), component("gone"))
    report = import_locations(session, [str(file)], settings)
    assert report.updated == 1
    gone = entity(session, "component:default/gone")
    assert gone is not None and not gone.orphan


def test_rejected_new_version_keeps_the_stored_one(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "c.yaml", component("svc", owner="team-a"))
    import_locations(session, [str(file)], settings)
    write(file, component("svc", owner="team-b").replace("lifecycle: production", "lifecycle: ''"))
    report = import_locations(session, [str(file)], settings)
    assert report.orphaned == 0 and len(report.problems) == 1
    stored = entity(session, "component:default/svc")
    assert stored is not None and not stored.orphan
    assert stored.owner_ref == "group:default/team-a"


def test_unreadable_location_target_keeps_its_entities(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    child = write(tmp_path / "child.yaml", component("child"))
    root = write(
        tmp_path / "root.yaml",
        textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata: {name: root}
        spec:
          targets: [./child.yaml]
        """),
    )
    import_locations(session, [str(root)], settings)
    child.unlink()
    report = import_locations(session, [str(root)], settings)
    assert any("file not found" in p.message for p in report.problems)
    stored = entity(session, "component:default/child")
    assert stored is not None and not stored.orphan


def test_dropped_location_target_orphans_its_entities(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "child.yaml", component("child"))
    location = textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata: {name: root}
        spec:
          targets: [TARGETS]
        """)
    root = write(tmp_path / "root.yaml", location.replace("TARGETS", "./child.yaml"))
    import_locations(session, [str(root)], settings)
    write(root, location.replace("[TARGETS]", "[]"))
    report = import_locations(session, [str(root)], settings)
    assert report.orphaned == 1
    stored = entity(session, "component:default/child")
    assert stored is not None and stored.orphan


def test_same_entity_in_two_files_keeps_the_first(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    first = write(tmp_path / "a.yaml", component("dup", owner="team-a"))
    second = write(tmp_path / "b.yaml", component("dup", owner="team-b"))
    report = import_locations(session, [str(first), str(second)], settings)
    assert report.added == 1
    [problem] = report.problems
    assert problem.message == (
        f"component:default/dup is already defined in {first} line 4; this copy is ignored"
    )
    # The duplicate's own metadata.name line, not its document's first line (apiVersion).
    assert (problem.source, problem.line, problem.field_path) == (str(second), 4, "metadata.name")
    stored = entity(session, "component:default/dup")
    assert stored is not None and stored.owner_ref == "group:default/team-a"


def test_folder_import_reads_every_yaml_file(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path / "cat" / "a.yaml", component("a"))
    write(tmp_path / "cat" / "b.yml", component("b"))
    (tmp_path / "cat" / "notes.txt").write_text("not yaml", encoding="utf-8")
    report = import_locations(session, [str(tmp_path / "cat")], settings)
    assert report.added == 2 and report.problems == []


def test_oversized_file_is_refused(session: Session, settings: Settings, tmp_path: Path) -> None:
    file = write(tmp_path / "big.yaml", component("big", extra="  padding: '" + "x" * 5000 + "'\n"))
    small = settings.model_copy(update={"catalog_max_file_bytes": 1000})
    report = import_locations(session, [str(file)], small)
    assert report.added == 0
    assert "byte limit" in report.problems[0].message


def test_remote_location_targets_are_not_fetched(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    root = write(
        tmp_path / "root.yaml",
        textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata: {name: remote}
        spec:
          type: url
          target: https://example.com/catalog-info.yaml
        """),
    )
    report = import_locations(session, [str(root)], settings)
    assert report.added == 1  # the Location itself
    assert "not fetched" in report.problems[0].message


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_location_inside_a_git_repository(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "repo"
    write(
        work / "catalog-info.yaml",
        textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Location
        metadata: {name: from-git}
        spec:
          targets: [./services/api.yaml]
        """),
    )
    write(work / "services" / "api.yaml", component("from-git-svc"))
    git("init", "-q", "-b", "main", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "add", ".", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "c", cwd=work)
    location = f"git+file://{work}#main:catalog-info.yaml"
    report = import_locations(session, [location], settings)
    assert report.problems == []
    stored = entity(session, "component:default/from-git-svc")
    assert stored is not None
    assert stored.source_key == f"git+file://{work}#main:services/api.yaml"
    missing = import_locations(session, [f"git+file://{work}#main:nope.yaml"], settings)
    assert "cannot read nope.yaml" in missing.problems[0].message


@pytest.mark.parametrize("bad", ["git+file:///x", "git+#main:a.yaml", "https://example.com/x.yaml"])
def test_malformed_locations_are_reported(session: Session, settings: Settings, bad: str) -> None:
    report = import_locations(session, [bad], settings)
    assert report.added == 0 and report.problems[0].source == bad


def test_yaml_dates_and_binary_stay_text(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    document = component("dated") + "  since: 2024-01-01\n  blob: !!binary aGVsbG8=\n"
    file = write(tmp_path / "c.yaml", document)
    report = import_locations(session, [str(file)], settings)
    assert report.problems == []
    stored = entity(session, "component:default/dated")
    assert stored is not None
    assert stored.document["spec"]["since"] == "2024-01-01"
    assert stored.document["spec"]["blob"] == "aGVsbG8="
