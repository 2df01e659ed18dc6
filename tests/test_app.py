"""Operations endpoints, navigation, static assets and the metrics labels."""

import re
from pathlib import Path

from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from portal.db import database_ok
from portal.metrics import route_template


def test_healthz_reports_the_database(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_fails_when_the_database_is_unreachable(tmp_path: Path) -> None:
    broken = Settings(
        data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none", secret_key="k"
    )
    app = create_app(broken)
    assert not database_ok(app.state.engine)
    response = TestClient(app).get("/healthz")  # no lifespan: migrations would fail first
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "unreachable"}


def test_metrics_use_route_templates_not_raw_paths(client: TestClient) -> None:
    client.get("/api/catalog/entities/component/default/a")
    client.get("/api/catalog/entities/component/default/b")
    client.get("/no/such/page")
    text = client.get("/metrics").text
    assert 'route="/api/catalog/entities/{kind}/{namespace}/{name}",status="404"} 2.0' in text
    assert "/component/default/a" not in text
    assert 'route="unmatched",status="404"} 1.0' in text
    assert re.search(
        r'portal_http_request_duration_seconds_bucket\{le="0.005",method="GET",'
        r'route="/api/catalog/entities/\{kind\}/\{namespace\}/\{name\}"\}',
        text,
    )


def test_route_template_without_route_is_unmatched() -> None:
    assert route_template({"type": "http"}) == "unmatched"


def test_every_area_is_in_the_navigation(client: TestClient) -> None:
    page = client.get("/catalog").text
    for label, href in [
        ("Catalog", "/catalog"),
        ("Create", "/create"),
        ("Reviews", "/reviews"),
        ("SLOs", "/slos"),
        ("Cost", "/cost"),
        ("Traces", "/traces"),
        ("Models", "/models"),
    ]:
        assert f'<a href="{href}"' in page and f">{label}</a>" in page
        assert client.get(href).status_code == 200
    assert 'aria-current="page"' in client.get("/slos").text


def test_htmx_is_served_by_the_portal_not_a_cdn(client: TestClient) -> None:
    page = client.get("/catalog").text
    assert '<script src="/static/htmx.min.js"' in page
    assert "unpkg" not in page and "cdn" not in page.lower()
    script = client.get("/static/htmx.min.js")
    assert script.status_code == 200 and 'version:"2.' in script.text
    assert client.get("/static/htmx.LICENSE").status_code == 200


def test_home_is_a_page_of_its_own(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)  # tests/home: what it shows
    assert response.status_code == 200 and "<h1>Platform portal</h1>" in response.text
