"""The home page over HTTP: signed-in panels, the visitor's page, the header on every page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from portal.changes.models import ChangeStatus
from portal.integrations.prometheus import FakePrometheus
from portal.slo.runtime import SLORuntime
from tests.conftest import ADA, ALAN, GRACE
from tests.databases import SQLITE_ONLY
from tests.home.support import ML, add_change

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

ALERTS_PANEL = {"HX-Request": "true", "HX-Target": "home-alerts"}


def app_engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def slo_runtime(client: TestClient) -> SLORuntime:
    runtime: SLORuntime = client.app.state.slo  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def changes(portal: TestClient) -> Iterator[dict[str, str]]:
    """Changes of the repository's catalog teams: name -> change id."""
    with Session(app_engine(portal)) as session:
        stored = [
            add_change(session, "adas-payments", by="ada.lovelace", minutes_ago=30),
            add_change(
                session,
                "graces-orders",
                by="grace.hopper",
                minutes_ago=20,
                checks={"passed": 4, "warning": 1},
            ),
            add_change(session, "ada-checking", by="ada.lovelace", status=ChangeStatus.CHECKING),
            add_change(session, "ml-model", by="alan.turing", owner=ML, minutes_ago=5),
            add_change(
                session,
                "shipped",
                by="grace.hopper",
                status=ChangeStatus.MERGED,
                approved_by="user:default/ada.lovelace",
            ),
        ]
        yield {change.service: change.id for change in stored}


def section(html: str, section_id: str) -> str:
    match = re.search(rf'<section [^>]*id="{section_id}".*?</section>', html, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def test_a_visitor_learns_what_the_portal_is_and_how_to_sign_in(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and "HX-Request" in response.headers["vary"]
    html = response.text
    assert "<h1>Platform portal</h1>" in html and "What this portal is" in html
    assert '<a class="button" href="/auth/sign-in?next=/">Sign in</a>' in html  # local mode
    assert 'id="reviews"' not in html and "Welcome" not in html


def test_behind_a_proxy_a_visitor_is_told_where_sign_in_happens(portal: TestClient) -> None:
    html = portal.get("/").text
    assert "single sign-on proxy in front of the portal" in html
    assert "/auth/sign-in" not in html


def test_a_teammate_sees_the_review_waiting_and_my_own_changes_apart(
    portal: TestClient, changes: dict[str, str]
) -> None:
    html = portal.get("/", headers=GRACE).text
    assert "<h1>Welcome, grace.hopper</h1>" in html
    reviews = section(html, "reviews")
    assert f'href="/reviews/{changes["adas-payments"]}"' in reviews
    for other in ("graces-orders", "ada-checking", "ml-model", "shipped"):
        assert changes[other] not in reviews, other
    mine = section(html, "my-changes")
    assert (
        f'href="/reviews/{changes["graces-orders"]}"' in mine
        and changes["adas-payments"] not in mine
    )
    services = section(html, "services")
    assert 'href="/catalog/component/default/portal"' in services
    assert 'href="/catalog/component/default/flux"' in services
    assert "prometheus" not in services  # sre's
    merges = section(html, "merges")
    assert changes["shipped"] in merges and "approved by" in merges
    assert 'id="admin-badge"' not in html


def test_an_admin_reviews_every_team_and_sees_the_badge_on_every_page(
    portal: TestClient, changes: dict[str, str]
) -> None:
    html = portal.get("/", headers=ADA).text
    reviews = section(html, "reviews")
    assert changes["graces-orders"] in reviews and changes["ml-model"] in reviews
    assert changes["adas-payments"] not in reviews  # her own
    assert '<span class="badge ok">4 passed</span>' in reviews
    assert '<span class="badge warn">1 warning</span>' in reviews
    mine = section(html, "my-changes")
    assert changes["adas-payments"] in mine and changes["ada-checking"] in mine
    assert 'data-status="checking"' in mine
    for path in ("/", "/catalog", "/reviews", "/slos"):
        page = portal.get(path, headers=ADA).text
        header = page.split("</header>", 1)[0]
        assert 'id="admin-badge"' in header and "platform admin" in header, path
        assert "ada.lovelace" in header
        assert 'id="admin-badge"' not in portal.get(path, headers=GRACE).text, path


def test_empty_panels_say_what_to_do(portal: TestClient) -> None:
    html = portal.get("/", headers=ALAN).text
    assert "Nothing waits for your review." in section(html, "reviews")
    assert 'You have no open changes. <a href="/create">Create a service</a>' in html
    assert "Your teams own no services yet." in section(html, "services")
    assert "Nothing has been merged yet." in section(html, "merges")


def test_the_alerts_panel_is_loaded_by_htmx_and_reports_a_missing_prometheus(
    portal: TestClient,
) -> None:
    first = portal.get("/", headers=GRACE).text
    placeholder = section(first, "home-alerts")
    assert 'hx-get="/"' in placeholder and 'hx-trigger="load"' in placeholder
    panel = portal.get("/", headers={**GRACE, **ALERTS_PANEL})
    assert panel.status_code == 200
    assert panel.text.lstrip().startswith('<section class="card panel"')
    assert "<html" not in panel.text and 'id="reviews"' not in panel.text
    assert 'data-state="not_configured"' in panel.text and "hx-trigger" not in panel.text
    assert "Prometheus is not configured" in panel.text
    owned = [e for e in slo_runtime(portal).slo_index().entries if e.team == "platform-team"]
    assert owned  # sre/slos: the portal's own SLOs
    assert f"Your teams own {len(owned)} SLO" in panel.text
    # Now cached: the full page shows the panel without another request.
    assert 'data-state="not_configured"' in portal.get("/", headers=GRACE).text


def test_an_unreachable_prometheus_fails_the_panel_not_the_page(portal: TestClient) -> None:
    slo_runtime(portal).prometheus = FakePrometheus(up=False)
    panel = portal.get("/", headers={**GRACE, **ALERTS_PANEL})
    assert panel.status_code == 200 and 'data-state="unreachable"' in panel.text
    assert "Prometheus does not answer" in panel.text and "not reachable" in panel.text
    page = portal.get("/", headers=GRACE)
    assert page.status_code == 200 and 'data-state="unreachable"' in page.text


def test_an_anonymous_panel_request_asks_to_sign_in(portal: TestClient) -> None:
    panel = portal.get("/", headers=ALERTS_PANEL)
    assert panel.status_code == 200 and "<html" not in panel.text
    assert "Sign in to see your teams' SLO alerts." in panel.text
