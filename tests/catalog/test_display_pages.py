"""What the catalog pages show: titles with kinds, owners, sorting, defaults and no repeats."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from itertools import pairwise

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.catalog.support import list_rows, section, sign_in, text_of
from tests.databases import SQLITE_ONLY
from tests.query_count import count_queries

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

PLATFORM_COMPONENTS = {"Flux", "Platform portal"}  # owned by platform-team (catalog/)


def count(html: str) -> int:
    found = re.search(r'id="result-count">(\d+) entit', html)
    assert found, "the page says how many entities match"
    return int(found.group(1))


def rows(client: TestClient, **params: str) -> list[list[str]]:
    response = client.get("/catalog", params=params)
    assert response.status_code == 200, response.text
    return list_rows(response.text)


def all_rows(client: TestClient, **params: str) -> list[list[str]]:
    """Every row of every page, following the pages as a reader would."""
    found: list[list[str]] = []
    while True:
        page = rows(client, **params, offset=str(len(found)))
        found += page
        if len(page) < 25:
            return found


# -- relations: titles, kinds, links; refs the catalog does not hold -------------------------


def test_relations_show_titles_with_kind_badges_and_link_to_the_entity(
    display_client: TestClient,
) -> None:
    html = display_client.get("/catalog/component/default/portal").text
    relations = section(html, "relations")
    assert (
        '<a href="/catalog/api/default/portal-catalog-api" title="api:default/portal-catalog-api">'
        'Portal catalog API</a> <span class="badge kind">API</span>'
    ) in relations
    assert '>Portal database</a> <span class="badge kind">Resource</span>' in relations
    assert "resource:portal-database" not in text_of(relations)  # no refs as text
    about = section(html, "about")
    assert '>Developer portal</a> <span class="badge kind">System</span>' in about
    assert '>platform-team</a> <span class="badge kind">Group</span>' in about


def test_a_ref_not_in_the_catalog_stays_a_ref_marked_as_such(display_client: TestClient) -> None:
    html = display_client.get("/catalog/component/default/zeta-widget").text
    relations = section(html, "relations")
    assert (
        '<code>component:default/ghost-service</code> <span class="badge kind">Component</span> '
        '<span class="badge bad"'
    ) in relations
    assert "not in the catalog" in relations
    assert 'href="/catalog/component/default/ghost-service"' not in html  # would be a 404
    assert '>artists-db</a> <span class="badge kind">Resource</span>' in relations
    owned = display_client.get("/catalog/component/default/orphan-owned").text
    assert "<code>group:default/vanished-team</code>" in section(owned, "about")


def counted_queries(client: TestClient) -> AbstractContextManager[list[str]]:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return count_queries(engine)


def test_relation_targets_are_read_in_one_query_whatever_their_number(
    display_client: TestClient,
) -> None:
    counts = {}
    for path in ("/catalog/group/default/design-team", "/catalog/group/default/team-a"):
        with counted_queries(display_client) as statements:
            assert display_client.get(path).status_code == 200
        counts[path] = len(statements)
    # team-a owns 15 entities and has 5 members, design-team one entity: same query count.
    assert counts["/catalog/group/default/team-a"] == counts["/catalog/group/default/design-team"]
    with counted_queries(display_client) as statements:
        display_client.get("/catalog", params={"kind": "all"})
    owner_reads = [s for s in statements if "catalog_entity.spec_type" in s and " IN " in s]
    assert len(owner_reads) == 1  # the page's owners
    # The owner filter's options come from the import's facet table, whatever their number.
    assert any("FROM catalog_facet" in s for s in statements)


# -- a group's lists are shown once ----------------------------------------------------------


def test_a_group_page_lists_what_it_owns_and_its_members_once(display_client: TestClient) -> None:
    html = display_client.get("/catalog/group/default/team-a").text
    assert html.count('href="/catalog/component/default/www-artist"') == 1
    assert html.count('href="/catalog/user/default/janelle.dawe"') == 1
    relations = section(html, "relations")
    assert "Owner of" not in relations and "Has member" not in relations
    assert "Child of" in relations and ">backstage</a>" in relations
    owns = section(html, "owned")
    assert '>www-artist</a> <span class="badge kind">Component</span>' in owns
    members = section(html, "members")
    assert '>janelle.dawe</a> <span class="badge kind">User</span>' in members
    assert "Janelle Dawe" in members  # the profile's display name beside it


def test_owner_and_system_are_not_repeated_as_relations(display_client: TestClient) -> None:
    html = display_client.get("/catalog/component/default/zeta-widget").text
    assert html.count('href="/catalog/group/default/design-team"') == 1
    relations = section(html, "relations")
    assert "Owned by" not in relations
    assert "Part of" not in relations  # its only partOf is the system of the About facts
    assert "Depends on" in relations


# -- the list: Components by default, all kinds on request -----------------------------------


def test_the_list_shows_components_by_default_and_every_kind_on_request(
    display_client: TestClient,
) -> None:
    default = display_client.get("/catalog").text
    shown = list_rows(default)
    assert shown and {row[1] for row in shown} == {"Component"}
    assert re.search(r'<option value="Component"\s+selected>', default)
    assert 'href="/catalog?kind=all"' in default and "Show all kinds" in default
    every = display_client.get("/catalog", params={"kind": "all", "sort": "kind"})
    assert {row[1].split()[0] for row in list_rows(every.text)} >= {
        "API",
        "AiResource",
        "Component",
    }
    assert count(every.text) > count(default) == len(shown)
    assert re.search(r'<option value="all">all kinds</option>', every.text)
    assert "Show all kinds" not in every.text
    empty = display_client.get("/catalog", params={"kind": "", "sort": "kind"}).text
    assert list_rows(empty) == list_rows(every.text)  # an empty kind asks for every kind
    groups = rows(display_client, kind="group")
    assert groups and {row[1] for row in groups} == {"Group"}
    # Links keep the chosen kind, so sorting or paging never falls back to Components.
    assert "kind=all" in re.search(r'<a href="(/catalog\?[^"]*sort=name[^"]*)"', every.text)[1]  # type: ignore[index]


def test_the_api_still_lists_every_kind_without_a_kind(display_client: TestClient) -> None:
    body = display_client.get("/api/catalog/entities", params={"limit": 500}).json()
    assert {item["kind"] for item in body["items"]} >= {"Component", "Group", "User", "API"}


# -- sorting by what is displayed -------------------------------------------------------------


def test_the_name_column_sorts_by_the_title_it_shows(display_client: TestClient) -> None:
    names = [row[0] for row in rows(display_client, sort="name")]
    assert names == sorted(names, key=str.lower)
    assert names[0] == "Alpha widget"  # zeta-widget, shown by its title
    assert "Platform portal" in names and "portal" not in names
    descending = [row[0] for row in rows(display_client, sort="name", desc="1")]
    assert descending == names[::-1]
    unsorted = [row[0] for row in rows(display_client)]
    assert unsorted == names  # the default order is by kind, then the shown name


def test_the_owner_column_sorts_by_the_owner_it_shows(display_client: TestClient) -> None:
    shown = all_rows(display_client, kind="all", sort="owner")
    owners = [row[3] for row in shown if row[3]]
    assert owners == sorted(owners, key=str.lower)
    assert "Design & Research" in owners  # design-team, shown by its title
    assert "group:default/vanished-team" in owners  # not in the catalog: shown as its ref
    assert owners.index("Design & Research") < owners.index("guest") < owners.index("sre")
    assert [row[3] for row in shown][-1] == ""  # entities without an owner come last
    descending = all_rows(display_client, kind="all", sort="owner", desc="1")
    assert [row[3] for row in descending] == [row[3] for row in shown][::-1]


# -- the owner filter -------------------------------------------------------------------------


def test_the_owner_filter_offers_readable_labels_with_the_ref_as_value(
    display_client: TestClient,
) -> None:
    html = display_client.get("/catalog").text
    owner_select = html[
        html.index('<select name="owner">') : html.index(
            "</select>", html.index('<select name="owner">')
        )
    ]
    options = re.findall(
        r'<option value="([^"]*)" title="([^"]*)"\s*>([^<]*)</option>', owner_select
    )
    labels = {value: label for value, title, label in options if value == title}
    assert labels["group:default/design-team"] == "Design &amp; Research"
    assert labels["group:default/platform-team"] == "platform-team"
    assert labels["group:default/vanished-team"] == "vanished-team"
    assert labels["user:default/guest"] == "guest"
    assert len(labels) == len(options)
    assert '<optgroup label="Group">' in owner_select and '<optgroup label="User">' in owner_select
    assert not any(label.startswith(("group:", "user:")) for label in labels.values())
    filtered = display_client.get("/catalog", params={"owner": "platform-team"}).text
    assert re.search(
        r'<option value="group:default/platform-team" title="[^"]+" selected>', filtered
    )  # a short ref selects its option
    assert {row[0] for row in list_rows(filtered)} == PLATFORM_COMPONENTS


# -- owned by my teams ------------------------------------------------------------------------


def test_owned_by_my_teams_keeps_what_the_signed_in_persons_groups_own(
    display_client: TestClient,
) -> None:
    anonymous = display_client.get("/catalog", params={"mine": "1"}).text
    assert 'name="mine"' not in anonymous  # the filter is offered to signed-in people
    assert "to see what your teams own" in anonymous and "/auth/sign-in?next=" in anonymous
    assert len(list_rows(anonymous)) > len(PLATFORM_COMPONENTS)  # not narrowed
    sign_in(display_client, "user:default/grace.hopper")  # platform-team
    page = display_client.get("/catalog").text
    assert re.search(r'<input type="checkbox" name="mine" value="1">', page)
    mine = display_client.get("/catalog", params={"mine": "1"}).text
    assert {row[0] for row in list_rows(mine)} == PLATFORM_COMPONENTS
    assert re.search(r'name="mine" value="1" checked>', mine)
    every_kind = rows(display_client, mine="1", kind="all")
    assert {row[0] for row in every_kind} >= {"Developer portal", "Platform portal"}
    assert {row[3] for row in every_kind} == {"platform-team"}
    sign_in(display_client, "user:default/solo.person")  # in no group
    lonely = display_client.get("/catalog", params={"mine": "1"}).text
    assert list_rows(lonely) == [] and "You belong to no team" in lonely


# -- the system graph as drawn ----------------------------------------------------------------

_RECT = re.compile(r'<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"')
_PATH = re.compile(r'<path class="edge" marker-end="url\(#arrow\)" d="([^"]+)"')


def test_the_drawn_graph_keeps_every_edge_out_of_other_boxes(display_client: TestClient) -> None:
    html = display_client.get("/catalog/system/default/artist-engagement-portal").text
    boxes = [tuple(map(int, found)) for found in _RECT.findall(html)]
    paths = _PATH.findall(html)
    assert len(boxes) >= 8 and len(paths) >= 8
    for d in paths:
        points = [tuple(map(int, pair)) for pair in re.findall(r"(\d+) (\d+)", d)]
        touched = set()
        for (x0, y0), (x1, y1) in pairwise(points):
            for index, (bx, by, width, height) in enumerate(boxes):
                across = min(x0, x1) <= bx + width and max(x0, x1) >= bx
                if across and min(y0, y1) <= by + height and max(y0, y1) >= by:
                    touched.add(index)
        ends = {
            index
            for index, (bx, by, width, height) in enumerate(boxes)
            for x, y in (points[0], points[-1])
            if x in (bx, bx + width) and by <= y <= by + height
        }
        assert len(ends) == 2 and touched == ends, f"edge {d} touches boxes {touched}, ends {ends}"
