"""Full-text search and filters on both databases."""

import pytest
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.catalog.search import EntityQuery, facets, list_entities
from portal.config import Settings
from tests.conftest import BACKSTAGE_EXAMPLES


@pytest.fixture
def catalog(session: Session, settings: Settings) -> Session:
    roots = [str(BACKSTAGE_EXAMPLES / "all.yaml"), str(BACKSTAGE_EXAMPLES / "acme-corp.yaml")]
    import_locations(session, roots, settings)
    return session


def names(session: Session, **query: object) -> list[str]:
    return [e.name for e in list_entities(session, EntityQuery(**query)).items]  # type: ignore[arg-type]


def test_search_matches_name_prefix_and_ranks_name_first(catalog: Session) -> None:
    found = names(catalog, q="wayb")
    assert set(found) >= {"wayback-archive", "wayback-search", "wayback-archive-ingestion"}
    assert all("wayback" in name for name in found[:4])


def test_search_covers_description_tags_and_owner(catalog: Session) -> None:
    assert "artist-lookup" in names(catalog, q="java")  # tag
    assert names(catalog, q="petstore", kind="component") == ["petstore"]
    owned_by_team_c = set(names(catalog, q="team-c", kind="api"))
    assert "petstore-webhook" in owned_by_team_c  # matched through the owner ref


def test_all_words_must_match(catalog: Session) -> None:
    assert names(catalog, q="wayback search", kind="component") == ["wayback-search"]
    assert names(catalog, q="wayback zzzunknown") == []


def test_punctuation_in_queries_is_harmless(catalog: Session) -> None:
    assert names(catalog, q='"; DROP TABLE catalog_entity; --') == []
    assert "breanna.davison" in names(catalog, q="breanna.davison")


def test_filters_combine(catalog: Session) -> None:
    assert names(catalog, kind="Component", owner="team-a", lifecycle="experimental") == [
        "artist-lookup"
    ]
    assert names(catalog, kind="component", owner="group:default/team-a", sort="name") == [
        "artist-lookup",
        "wayback-archive",
        "wayback-archive-storage",
        "wayback-search",
        "www-artist",
    ]
    assert names(catalog, kind="user", owner="team-a") == []
    assert set(names(catalog, system="artist-engagement-portal", kind="component")) >= {
        "artist-lookup",
        "www-artist",
    }
    assert names(catalog, tag="java", kind="component", sort="name") == [
        "artist-lookup",
        "playback-order",
        "podcast-api",
    ]


def test_pagination_and_sort(catalog: Session) -> None:
    first = list_entities(catalog, EntityQuery(kind="user", sort="name", limit=5))
    second = list_entities(catalog, EntityQuery(kind="user", sort="name", limit=5, offset=5))
    assert first.total == second.total == 17
    assert first.has_next
    assert [e.name for e in first.items] == sorted(e.name for e in first.items)
    assert not {e.ref for e in first.items} & {e.ref for e in second.items}
    last = list_entities(catalog, EntityQuery(kind="user", sort="name", desc=True, limit=1))
    assert last.items[0].name == "tara.macgovern"


def test_facets_list_filter_values(catalog: Session) -> None:
    values = facets(catalog)
    assert "Component" in values["kind"]
    assert "group:default/team-a" in values["owner"]
    assert "java" in values["tag"]


def test_empty_values_sort_last_on_every_database(catalog: Session) -> None:
    ascending = list_entities(catalog, EntityQuery(sort="lifecycle", limit=500)).items
    lifecycles = [e.lifecycle for e in ascending]
    assert lifecycles[0] == "deprecated"
    assert lifecycles[-1] is None
    descending = list_entities(catalog, EntityQuery(sort="lifecycle", desc=True, limit=500)).items
    assert descending[0].lifecycle is None
