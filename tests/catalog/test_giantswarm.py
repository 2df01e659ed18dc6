"""Giant Swarm's production catalog imports faithfully, as a folder and as a git folder."""

import shutil
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, select

from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, ImportReport
from portal.config import Settings
from tests.catalog.test_folders import commit_repo
from tests.conftest import CONFORMANCE

GIANTSWARM = CONFORMANCE / "giantswarm"
CATALOGS = GIANTSWARM / "catalogs"

# From the vendored data's README: every entity defined more than once, and how often.
REPEATED = {
    "component:default/agent-sandbox": 2,
    "component:default/agentic-platform": 3,
    "component:default/aws-ebs-csi-driver-app": 2,
    "component:default/aws-efs-csi-driver": 2,
    "component:default/karpenter-app": 2,
    "component:default/muster": 2,
    "api:default/policyexceptions.policy.giantswarm.io": 2,
    "api:default/policymanifests.policy.giantswarm.io": 2,
}


def check_import(session: Session, report: ImportReport, key_of: dict[str, str]) -> None:
    """The README's expected result; ``key_of`` maps file names to their source keys."""
    session.expire_all()
    entities = session.exec(select(Entity)).all()
    assert Counter(e.kind for e in entities) == {"Component": 68, "API": 16, "Group": 12}
    assert report.added == 96 and report.sources_read == 3
    duplicates = Counter(p.entity_ref for p in report.problems)
    assert duplicates == {ref: count - 1 for ref, count in REPEATED.items()}
    for problem in report.problems:
        assert problem.field_path == "metadata.name"
        assert problem.source in {key_of["charts.yaml"], key_of["crds.yaml"]}
        file = CATALOGS / problem.source.rpartition("/")[2]
        assert problem.line is not None
        name = problem.entity_ref.partition("/")[2] if problem.entity_ref else ""
        assert file.read_text(encoding="utf-8").splitlines()[problem.line - 1] == (
            f"    name: {name}"
        )
        # The first definition is the one kept, and the problem says where it is.
        kept = next(e for e in entities if e.ref == problem.entity_ref)
        assert kept.source_doc < (problem.doc_index or 0)
        assert f"already defined in {problem.source} line " in problem.message


@pytest.fixture
def catalogs() -> Path:
    if not CATALOGS.is_dir():
        pytest.fail(f"conformance data missing at {CATALOGS}")
    return CATALOGS


def test_the_catalog_folder_imports_with_its_duplicates_reported(
    session: Session, settings: Settings, catalogs: Path
) -> None:
    report = import_locations(session, [str(catalogs)], settings)
    check_import(session, report, {p.name: str(p) for p in catalogs.iterdir()})
    again = import_locations(session, [str(catalogs)], settings)
    assert (again.added, again.updated, again.orphaned, again.unchanged) == (0, 0, 0, 96)


def test_the_catalog_folder_imports_from_git(
    session: Session, settings: Settings, catalogs: Path, tmp_path: Path
) -> None:
    work = tmp_path / "backstage-catalogs"
    shutil.copytree(GIANTSWARM, work)
    url = commit_repo(work)
    report = import_locations(session, [f"{url}#main:catalogs"], settings)
    check_import(
        session, report, {p.name: f"{url}#main:catalogs/{p.name}" for p in catalogs.iterdir()}
    )
    stored = session.exec(select(Entity).where(Entity.name == "team-atlas")).one()
    assert stored.source_key == f"{url}#main:catalogs/groups.yaml"
