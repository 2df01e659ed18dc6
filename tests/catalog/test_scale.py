"""What keeps the catalog fast at 100,000 entities behaves as the slow paths did.

Re-imports skip unchanged files, facets and tags are kept by the import, the owner sort
is stored: each is checked against what a full read, the rows themselves or the old
correlated query would say, on both databases.
"""

import importlib.util
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from portal.catalog import sources
from portal.catalog.facets import facet_counts
from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, Tag
from portal.catalog.parse import YamlStream
from portal.catalog.search import EntityQuery, facets, list_entities
from portal.config import Settings
from portal.db import MIGRATIONS_DIR, migrate
from tests.catalog.test_import import component, entity, write
from tests.conftest import BACKSTAGE_EXAMPLES
from tests.migrations.support import downgrade


def location(*targets: str) -> str:
    listed = "".join(f"\n    - {target}" for target in targets)
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: root\n"
        f"spec:\n  targets:{listed}\n"
    )


def group(name: str, title: str) -> str:
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
        f"metadata:\n  name: {name}\n  title: {title}\nspec:\n  type: team\n  children: []\n"
    )


@pytest.fixture
def parsed_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files an import parses (a skipped file is read and hashed, never parsed)."""
    parsed: list[str] = []
    original = YamlStream

    def counting(text: str, **kwargs: int) -> YamlStream:
        parsed.append(text.split("name: ", 2)[1].split("\n")[0] if "name: " in text else "")
        return original(text, **kwargs)

    monkeypatch.setattr(sources, "YamlStream", counting)
    return parsed


def test_a_reimport_parses_only_what_changed_and_applies_it(
    session: Session, settings: Settings, tmp_path: Path, parsed_files: list[str]
) -> None:
    write(tmp_path / "a.yaml", component("one"), component("two"))
    write(tmp_path / "b.yaml", component("three"))
    root = write(tmp_path / "catalog-info.yaml", location("./a.yaml", "./b.yaml"))
    first = import_locations(session, [str(root)], settings)
    assert (first.added, len(parsed_files)) == (4, 3)

    parsed_files.clear()
    again = import_locations(session, [str(root)], settings)
    assert (again.added, again.updated, again.unchanged, again.orphaned) == (0, 0, 4, 0)
    assert again.by_kind == {"Component": 3, "Location": 1} and parsed_files == []

    # Changed, deleted and moved: only a.yaml and b.yaml are parsed, the root is not.
    write(tmp_path / "a.yaml", component("two", owner="team-b"), component("three"))
    write(tmp_path / "b.yaml", component("four"))
    changed = import_locations(session, [str(root)], settings)
    assert (changed.added, changed.updated, changed.orphaned, changed.unchanged) == (1, 2, 1, 1)
    assert sorted(parsed_files) == ["four", "two"]
    assert changed.problems == []
    one, two, three = (entity(session, f"component:default/{n}") for n in ("one", "two", "three"))
    assert one is not None and one.orphan
    assert two is not None and two.owner_ref == "group:default/team-b"
    assert three is not None and three.source_key == str(tmp_path / "a.yaml")
    assert not three.orphan

    # The next run skips them all again, and nothing it reports differs.
    parsed_files.clear()
    quiet = import_locations(session, [str(root)], settings)
    assert (quiet.unchanged, quiet.orphaned, parsed_files) == (4, 0, [])


def test_a_file_with_problems_is_parsed_every_time(
    session: Session, settings: Settings, tmp_path: Path, parsed_files: list[str]
) -> None:
    broken = component("broken").replace("  owner: team-a\n", "")
    file = write(tmp_path / "c.yaml", component("fine"), broken)
    first = import_locations(session, [str(file)], settings)
    second = import_locations(session, [str(file)], settings)
    assert len(parsed_files) == 2
    assert [str(p) for p in second.problems] == [str(p) for p in first.problems] != []


def test_a_duplicate_of_a_skipped_file_points_at_its_name_line(
    session: Session, settings: Settings, tmp_path: Path, parsed_files: list[str]
) -> None:
    first = write(tmp_path / "first.yaml", component("other"), component("shared"))
    import_locations(session, [str(first)], settings)
    second = write(tmp_path / "second.yaml", component("shared"))
    report = import_locations(session, [str(first), str(second)], settings)
    assert len(parsed_files) == 2  # first.yaml once, then only second.yaml
    [problem] = report.problems
    # "shared" is document 1 of first.yaml: "---" is line 10, its metadata.name line 13.
    assert problem.message == (
        f"component:default/shared is already defined in {first} line 13; this copy is ignored"
    )
    assert problem.source == str(second)


def test_a_file_defining_what_an_earlier_one_now_defines_is_parsed_and_reported(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    late = write(tmp_path / "late.yaml", component("shared"))
    import_locations(session, [str(late)], settings)
    early = write(tmp_path / "early.yaml", component("shared", owner="team-b"))
    report = import_locations(session, [str(early), str(late)], settings)
    [problem] = report.problems
    assert problem.source == str(late) and "already defined in" in problem.message
    shared = entity(session, "component:default/shared")
    assert shared is not None and shared.owner_ref == "group:default/team-b"


def _counts_from_rows(session: Session) -> dict[str, dict[str, int]]:
    rows = session.exec(select(Entity)).all()
    columns = {
        "kind": "kind",
        "type": "spec_type",
        "lifecycle": "lifecycle",
        "owner": "owner_ref",
        "system": "system_ref",
    }
    counts = {
        facet: dict(Counter(getattr(e, name) for e in rows if getattr(e, name) is not None))
        for facet, name in columns.items()
    }
    counts["tag"] = dict(Counter(tag for e in rows for tag in set(e.tags_text.split())))
    return counts


def test_facet_counts_and_tags_follow_every_import(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    tagged = "metadata:\n  name: {name}\n  tags: [{tags}]\n"
    doc = component("x").replace("metadata:\n  name: x\n", tagged.format(name="x", tags="pci, go"))
    other = component("y", owner="team-b", extra="  system: shop\n")
    file = write(tmp_path / "c.yaml", doc, other, group("team-a", "Team A"))
    import_locations(session, [str(file)], settings)
    assert facet_counts(session) == _counts_from_rows(session)
    assert facet_counts(session)["tag"] == {"pci": 1, "go": 1}
    assert facets(session)["tag"] == ["go", "pci"]  # remembered until the next change

    retagged = doc.replace("tags: [pci, go]", "tags: [go, pci-dss]")
    write(file, retagged, other.replace("lifecycle: production", "lifecycle: experimental"))
    import_locations(session, [str(file)], settings)
    assert facet_counts(session) == _counts_from_rows(session)
    assert facet_counts(session)["lifecycle"] == {"production": 1, "experimental": 1}
    assert sorted(session.exec(select(Tag.tag)).all()) == ["go", "pci-dss"]
    assert facets(session)["tag"] == ["go", "pci-dss"]
    assert list_entities(session, EntityQuery(tag="pci")).total == 0  # a whole tag only
    assert [e.name for e in list_entities(session, EntityQuery(tag="pci-dss")).items] == ["x"]


def test_the_owner_sort_follows_a_change_of_the_owners_title(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    owners = write(tmp_path / "owners.yaml", group("team-a", "Zeta"), group("team-b", "Alpha"))
    owned = write(
        tmp_path / "owned.yaml",
        component("by-a", owner="team-a"),
        component("by-b", owner="team-b"),
        component("by-nobody", owner="team-gone"),
    )
    import_locations(session, [str(owners), str(owned)], settings)

    def by_owner(desc: bool = False) -> list[str]:
        query = EntityQuery(kind="component", sort="owner", desc=desc)
        return [e.name for e in list_entities(session, query).items]

    assert by_owner() == ["by-b", "by-nobody", "by-a"]  # alpha, group:default/team-gone, zeta
    write(owners, group("team-a", "Aardvark"), group("team-b", "Alpha"))
    import_locations(session, [str(owners), str(owned)], settings)
    assert by_owner() == ["by-a", "by-b", "by-nobody"]
    assert by_owner(desc=True) == ["by-nobody", "by-b", "by-a"]


def test_the_migration_derives_the_new_tables_from_stored_entities(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "c.yaml", component("x", extra="  system: shop\n"), group("team-a", "Z")
    )
    import_locations(session, [str(file)], settings)
    expected = facet_counts(session)
    connection = session.connection()
    for table in ("catalog_facet", "catalog_tag"):
        connection.execute(text(f"DELETE FROM {table}"))
    connection.execute(text("UPDATE catalog_entity SET owner_sort = NULL"))
    _migration_0012().fill(connection)  # what the upgrade runs on a catalog it finds
    session.commit()
    session.expire_all()
    assert facet_counts(session) == expected
    assert len(session.exec(select(Tag)).all()) == 0  # the component has no tags
    x = entity(session, "component:default/x")
    assert x is not None and x.owner_sort == "z"


def _migration_0012() -> ModuleType:
    path = MIGRATIONS_DIR / "versions" / "0012_catalog_scale.py"
    spec = importlib.util.spec_from_file_location("migration_0012", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("q", ["a", "team", "api", "wayback", "s"])
def test_pages_of_the_best_matches_are_those_of_the_full_ranking(
    session: Session, settings: Settings, q: str
) -> None:
    roots = [str(BACKSTAGE_EXAMPLES / "all.yaml"), str(BACKSTAGE_EXAMPLES / "acme-corp.yaml")]
    import_locations(session, roots, settings)
    # A filter that keeps every entity takes the path that ranks and sorts every match.
    full = list_entities(session, EntityQuery(q=q, include_orphans=False, limit=500))
    assert full.total > 3
    for limit in (1, 2, 5):
        pages = [
            list_entities(session, EntityQuery(q=q, limit=limit, offset=offset))
            for offset in range(0, full.total + limit, limit)
        ]
        assert [e.ref for page in pages for e in page.items] == [e.ref for e in full.items]
        assert {page.total for page in pages} == {full.total}


def test_totals_read_from_the_facet_counts_are_the_rows_counts(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(
        tmp_path / "c.yaml",
        component("x", extra="  system: shop\n"),
        component("y", owner="team-b"),
        component("gone"),
        group("team-a", "A"),
    )
    import_locations(session, [str(file)], settings)
    write(file, component("x", extra="  system: shop\n"), component("y", owner="team-b"))
    import_locations(session, [str(file)], settings)  # "gone" is an orphan, still counted
    rows = session.exec(select(Entity)).all()
    for query, expected in [
        (EntityQuery(), len(rows)),
        (EntityQuery(kind="all"), len(rows)),
        (EntityQuery(kind="COMPONENT"), 3),
        (EntityQuery(kind="group"), 1),  # team-a is gone from the file too: an orphan
        (EntityQuery(owner="team-a"), 2),
        (EntityQuery(owner="group:default/team-b"), 1),
        (EntityQuery(system="shop"), 1),
        (EntityQuery(type="service"), 3),
        (EntityQuery(lifecycle="nope"), 0),
        (EntityQuery(kind="component", owner="team-a"), 2),  # two filters: counted rows
        (EntityQuery(include_orphans=False), 2),
    ]:
        assert list_entities(session, query).total == expected, query


def test_the_migration_goes_down_and_up_again_and_search_still_works(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    file = write(tmp_path / "c.yaml", component("findme", extra="  system: shop\n"))
    import_locations(session, [str(file)], settings)
    session.close()
    engine = session.get_bind()
    downgrade(engine, "0011_traces")  # type: ignore[arg-type]
    migrate(engine)  # type: ignore[arg-type]
    with Session(engine) as fresh:
        assert facet_counts(fresh)["system"] == {"system:default/shop": 1}
        write(file, component("findme", owner="team-b", extra="  system: shop\n"))
        import_locations(fresh, [str(file)], settings)  # an update: the FTS triggers run
        assert [e.name for e in list_entities(fresh, EntityQuery(q="team-b")).items] == ["findme"]
