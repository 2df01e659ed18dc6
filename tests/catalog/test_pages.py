"""Catalog pages and JSON API through the full app."""

from pathlib import Path

from fastapi.testclient import TestClient

from tests.catalog.support import sign_in
from tests.conftest import csrf_token
from tests.databases import SQLITE_ONLY

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY


def test_list_page_full_and_fragment(app_client: TestClient) -> None:
    full = app_client.get("/catalog", params={"q": "wayback"})
    assert full.status_code == 200
    assert "<html" in full.text and 'id="results"' in full.text
    assert "HX-Request" in full.headers["vary"]
    fragment = app_client.get("/catalog", params={"q": "wayback"}, headers={"HX-Request": "true"})
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "wayback-archive" in fragment.text and "artist-lookup" not in fragment.text
    boosted = app_client.get("/catalog", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.text
    restore = app_client.get(
        "/catalog", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.text


def test_list_filters_sort_and_pages(app_client: TestClient) -> None:
    page = app_client.get("/catalog", params={"kind": "user", "sort": "name"})
    assert "22 entities" in page.text  # 17 Backstage users + 5 platform users
    assert "offset=25" not in page.text
    second = app_client.get("/catalog", params={"kind": "user", "sort": "name", "offset": 20})
    assert "21\u201322 of 22" in second.text


def test_entity_page_shows_relations_links_and_graph(app_client: TestClient) -> None:
    page = app_client.get("/catalog/component/default/artist-lookup")
    assert page.status_code == 200
    text = page.text
    assert 'href="/catalog/group/default/team-a"' in text
    assert 'href="/catalog/resource/default/artists-db"' in text
    assert "Depends on" in text and "Dependency of" not in text
    assert "https://example.com/dashboard" in text
    assert "backstage.io/source-template" in text
    assert (
        '<svg class="graph"' in text and "/catalog/system/default/artist-engagement-portal" in text
    )


def test_entity_page_is_case_insensitive_on_kind(app_client: TestClient) -> None:
    response = app_client.get("/catalog/Component/default/artist-lookup", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/catalog/component/default/artist-lookup"


def test_group_page_lists_members_and_owned(app_client: TestClient) -> None:
    text = app_client.get("/catalog/group/default/team-a").text
    assert "Members" in text and "/catalog/user/development/guest" in text
    assert "Owns" in text and "/catalog/component/default/www-artist" in text


def test_unknown_entity_is_a_clear_404(app_client: TestClient) -> None:
    response = app_client.get("/catalog/component/default/nope", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "There is no component default/nope in the catalog." in response.text


def test_api_list_and_get(app_client: TestClient) -> None:
    body = app_client.get("/api/catalog/entities", params={"kind": "API", "limit": 3}).json()
    assert body["total"] == 10 + 4  # Backstage's 10 APIs + the platform's 4
    assert len(body["items"]) == 3 and body["limit"] == 3
    entity = app_client.get("/api/catalog/entities/COMPONENT/default/artist-lookup").json()
    assert entity["kind"] == "Component"
    assert {"type": "ownedBy", "targetRef": "group:default/team-a"} in entity["relations"]
    assert entity["spec"]["apiConsumedBy"] == ["component:www-artist"]  # unknown field kept
    assert entity["metadata"]["annotations"]["backstage.io/managed-by-location"].startswith("file:")
    searched = app_client.get("/api/catalog/entities", params={"q": "grafana"}).json()
    assert searched["items"][0]["metadata"]["name"] == "grafana"
    owned = app_client.get("/api/catalog/entities", params={"owner": "sre", "kind": "component"})
    assert {i["metadata"]["name"] for i in owned.json()["items"]} == {
        "prometheus",
        "grafana",
        "tempo",
        "otel-collector",
    }
    missing = app_client.get("/api/catalog/entities/component/default/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert app_client.get("/api/catalog/entities", params={"limit": 0}).status_code == 422


def test_openapi_documents_the_catalog_api(app_client: TestClient) -> None:
    paths = app_client.get("/openapi.json").json()["paths"]
    assert "/api/catalog/entities" in paths
    assert "/api/catalog/entities/{kind}/{namespace}/{name}" in paths
    assert "/catalog" not in paths  # HTML pages are not part of the API


def test_import_from_ui_needs_a_platform_admin(app_client: TestClient, tmp_path: Path) -> None:
    file = tmp_path / "new.yaml"
    file.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: newteam}\n"
        "spec: {type: team, children: []}\n",
        encoding="utf-8",
    )
    token = csrf_token(app_client, "/catalog/import")
    anonymous = app_client.post(
        "/catalog/import",
        data={"locations": str(file), "csrf_token": token},
        headers={"accept": "text/html"},
    )
    assert anonymous.status_code == 401
    sign_in(app_client, "user:default/grace.hopper")  # platform-team, not an admin
    token = csrf_token(app_client, "/catalog/import")
    refused = app_client.post(
        "/catalog/import",
        data={"locations": str(file), "csrf_token": token},
        headers={"accept": "text/html"},
    )
    assert refused.status_code == 403 and "platform-admins" in refused.text
    sign_in(app_client, "user:default/ada.lovelace")  # platform-admins
    token = csrf_token(app_client, "/catalog/import")
    empty = app_client.post("/catalog/import", data={"locations": " ", "csrf_token": token})
    assert empty.status_code == 400 and "locations:" in empty.text
    done = app_client.post("/catalog/import", data={"locations": str(file), "csrf_token": token})
    assert done.status_code == 200 and "1 added" in done.text
    assert app_client.get("/catalog/group/default/newteam").status_code == 200
