"""A list filtered by one tag, read from the tag rows alone, is the entity table's list.

Each tag row carries a copy of its entity's list columns (``portal.catalog.tags``): the
pages, their order and the totals must be those the entity table gives for the same
query, whatever the sort, the direction, the other filters and the page, on both
databases, and they must follow what changes an entity without rewriting it (its
owner's title, its being orphaned).
"""

import itertools
import random
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, func, select

from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, Tag
from portal.catalog.search import (
    EntityQuery,
    _filters,  # the entity table's conditions: the reference
    _order,
    list_entities,
)
from portal.catalog.sort_keys import ENTITY_SORTS
from portal.config import Settings
from tests.catalog.test_import import write

TAGS = ["pci", "go", "kafka"]
OWNERS = {"team-a": "Zeta", "team-b": "alpha", "team-c": "Émile", "team-d": ""}


def group(name: str, title: str) -> str:
    shown = f"  title: {title}\n" if title else ""
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Group\n"
        f"metadata:\n  name: {name}\n{shown}  tags: [pci]\nspec:\n  type: team\n  children: []\n"
    )


def tagged_component(rng: random.Random, index: int) -> str:
    """A Component, API or System (no type nor lifecycle: empty sort values) with tags."""
    tags = rng.sample(TAGS, rng.randint(0, 2))
    title = rng.choice(["", f"Title {rng.randint(0, 5)}", f"écho {index % 3}", "ZED"])
    kind = rng.choice(["Component", "Component", "API", "System"])
    spec = [f"owner: {rng.choice([*OWNERS, 'team-gone'])}"]
    if kind != "System":
        spec.append(f"type: {rng.choice(['service', 'website', 'grpc'])}")
        spec.append(f"lifecycle: {rng.choice(['production', 'experimental'])}")
    if kind == "Component" and rng.random() < 0.5:
        spec.append(f"system: {rng.choice(['shop', 'data'])}")
    if kind == "API":
        spec.append("definition: openapi")
    body = "".join(f"  {line}\n" for line in spec)
    shown = f"  title: {title}\n" if title else ""
    return (
        f"apiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n"
        f"  name: e{index:02d}\n{shown}  tags: [{', '.join(tags)}]\nspec:\n{body}"
    )


def reference(session: Session, query: EntityQuery) -> tuple[list[str], int]:
    """The same query on the entity table, every matching entity sorted."""
    conditions = _filters(session, query)
    order = _order(query, ENTITY_SORTS)
    dialect = session.get_bind().dialect.name
    rows = session.exec(
        select(Entity.ref)
        .where(*conditions)
        .order_by(*(term for key in order for term in key.order_by(dialect)))
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    total = session.exec(select(func.count()).select_from(Entity).where(*conditions)).one()
    return list(rows), total


@pytest.fixture
def catalog(session: Session, settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    owners = write(tmp_path / "owners.yaml", *(group(n, t) for n, t in OWNERS.items()))
    things = write(tmp_path / "things.yaml", *(tagged_component(rng, i) for i in range(60)))
    report = import_locations(session, [str(owners), str(things)], settings)
    assert not report.problems
    return owners, things


def assert_same_as_the_entity_table(session: Session, **filters: str | bool) -> None:
    for sort, desc, offset in itertools.product(
        ["", "name", "kind", "owner", "type", "lifecycle", "updated"], [False, True], [0, 7]
    ):
        query = EntityQuery(sort=sort, desc=desc, limit=7, offset=offset, **filters)  # type: ignore[arg-type]
        page = list_entities(session, query)
        assert ([e.ref for e in page.items], page.total) == reference(session, query), query


@pytest.mark.parametrize(
    "filters",
    [
        {"tag": "pci"},
        {"tag": "go", "kind": "component"},
        {"tag": "kafka", "kind": "all", "lifecycle": "production"},
        {"tag": "pci", "owner": "team-b"},
        {"tag": "pci", "system": "system:default/shop", "type": "service"},
        {"tag": "PCI"},  # SQLite compares tags ignoring ASCII case, PostgreSQL does not
        {"tag": "nope"},
    ],
)
def test_a_tag_filtered_list_is_the_entity_tables_list(
    session: Session, catalog: tuple[Path, Path], filters: dict[str, str]
) -> None:
    if filters["tag"] != "nope":
        assert list_entities(session, EntityQuery(kind="all", tag="pci")).total > 5
    assert_same_as_the_entity_table(session, **filters)


def test_the_tag_rows_follow_an_owners_title_and_orphans(
    session: Session, settings: Settings, catalog: tuple[Path, Path]
) -> None:
    owners, things = catalog

    def by_owner() -> list[str]:
        query = EntityQuery(kind="all", tag="pci", sort="owner", limit=500)
        return [e.ref for e in list_entities(session, query).items]

    before = by_owner()
    write(owners, *(group(n, "Aaa" if n == "team-a" else t) for n, t in OWNERS.items()))
    import_locations(session, [str(owners), str(things)], settings)
    after = by_owner()
    assert after != before  # team-a's entities moved from last (Zeta) to first (Aaa)
    assert_same_as_the_entity_table(session, tag="pci", kind="all")

    # The groups (tagged pci) leave their file: orphaned, not rewritten.
    write(owners, group("team-z", "Z").replace("tags: [pci]", "tags: []"))
    import_locations(session, [str(owners), str(things)], settings)
    assert_same_as_the_entity_table(session, tag="pci", kind="all", include_orphans=False)
    kept = list_entities(session, EntityQuery(kind="group", tag="pci", include_orphans=False))
    assert kept.total == 0
    orphaned = session.exec(select(Tag).where(Tag.orphan)).all()
    assert {tag.entity_ref for tag in orphaned} == {f"group:default/{n}" for n in OWNERS}


_LIST_COLUMNS = (
    "e.id, e.ref, {name_key}, e.kind_key, e.spec_type, e.lifecycle, e.owner_ref, e.owner_sort,"
    " e.system_ref, e.orphan, e.updated_at"
)
# The entity's vector without positions or weights, and its name and title's (migration 0017).
ENTITY_ROW = (
    f"SELECT {_LIST_COLUMNS}, strip(e.search_vector)::text,"
    " strip(ts_filter(e.search_vector, '{{a}}'))::text FROM catalog_entity AS e ORDER BY e.id"
).format(name_key="lower(coalesce(nullif(e.title, ''), e.name))")
SEARCH_ROW = (
    f"SELECT {_LIST_COLUMNS}, e.search_vector::text, e.name_vector::text"
    " FROM catalog_search AS e ORDER BY e.id"
).format(name_key="e.name_key")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: FTS5
def test_postgresql_search_rows_follow_the_entities(
    session: Session, settings: Settings, catalog: tuple[Path, Path]
) -> None:
    """catalog_search (migration 0014) is what its triggers copy, after every kind of write."""
    owners, things = catalog

    def rows() -> tuple[list[object], list[object]]:
        session.commit()
        search = session.execute(text(SEARCH_ROW)).all()
        return list(search), list(session.execute(text(ENTITY_ROW)).all())

    search, entities = rows()
    assert len(entities) > 60 and search == entities
    write(owners, *(group(n, "Aaa" if n == "team-a" else t) for n, t in OWNERS.items()))
    write(things, *(tagged_component(random.Random(8), i) for i in range(60)))  # new titles
    import_locations(session, [str(owners), str(things)], settings)
    write(owners, group("team-z", "Z").replace("tags: [pci]", "tags: []"))  # groups orphaned
    import_locations(session, [str(owners), str(things)], settings)
    search, entities = rows()
    assert search == entities
    hits = list_entities(session, EntityQuery(q="zed", kind="all", limit=500))
    assert {e.ref for e in hits.items} == {
        e.ref for e in session.exec(select(Entity)).all() if (e.title or "").lower() == "zed"
    }
