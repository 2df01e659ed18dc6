"""The home page in Chromium: a signed-in admin's panels and header, and a visitor's page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from portal.changes.models import ChangeStatus
from portal.db import make_engine
from tests.browser_server import initialised_settings, live_server, sign_in
from tests.conftest import REPO
from tests.home.support import add_change

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal (local sign-in) with the repo's catalog and changes of its teams."""
    settings = initialised_settings(
        tmp_path_factory.mktemp("browser-home"),
        "browser-home-secret",
        gitops=True,
        slo_paths=[str(REPO / "sre" / "slos")],
        run_worker=False,  # the stored changes stay as they are
    )
    engine = make_engine(settings)
    with Session(engine) as session:
        add_change(session, "adas-payments", by="ada.lovelace", minutes_ago=3)
        add_change(session, "graces-orders", by="grace.hopper", checks={"passed": 5})
        add_change(session, "flux-alerts", by="ada.lovelace", status=ChangeStatus.MERGED)
    engine.dispose()
    with live_server(settings) as url:
        yield url


def test_a_visitor_reads_what_the_portal_is_and_signs_in_from_home(page: Page) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Platform portal")
    expect(page.get_by_role("region", name="What this portal is")).to_contain_text(
        "service catalog"
    )
    sign_in = page.get_by_role("region", name="Sign in")
    expect(page.get_by_role("banner")).not_to_contain_text("platform admin")
    sign_in.get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/auth/sign-in\?next=/$"))
    page.locator('button[data-user="user:default/ada.lovelace"]').click()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Ada Lovelace")


def test_an_admin_sees_their_change_a_waiting_review_and_the_badge(page: Page) -> None:
    sign_in(page, "ada.lovelace", "/")

    header = page.get_by_role("banner")
    expect(header).to_contain_text("Ada Lovelace")
    badge = header.locator("#admin-badge")
    expect(badge).to_have_text("platform admin")
    expect(badge).to_have_attribute("title", re.compile(r"^Member of platform-admins"))

    mine = page.get_by_role("region", name=re.compile(r"^Your open changes"))
    expect(
        mine.get_by_role("link", name="Create adas-payments from FastAPI service")
    ).to_be_visible()
    expect(mine).not_to_contain_text("graces-orders")

    reviews = page.get_by_role("region", name=re.compile(r"^Reviews waiting for you"))
    waiting = reviews.get_by_role("link", name="Create graces-orders from FastAPI service")
    expect(waiting).to_be_visible()
    expect(reviews).to_contain_text("5 passed")
    expect(reviews).not_to_contain_text("adas-payments")

    services = page.get_by_role("region", name=re.compile(r"^Your teams' services"))
    expect(services.get_by_role("link", name=re.compile("portal", re.I)).first).to_be_visible()
    merges = page.get_by_role("region", name="Recent merges")
    expect(merges).to_contain_text("flux-alerts")

    # htmx replaced the placeholder with the panel: no Prometheus in this test portal.
    alerts = page.locator("#home-alerts")
    expect(alerts).to_have_attribute("data-state", "not_configured")
    expect(alerts).to_contain_text("Prometheus is not configured")

    # The badge is in the header of every page, not only here.
    page.goto("/catalog")
    expect(page.get_by_role("banner").locator("#admin-badge")).to_be_visible()
    waiting_href = "/reviews/"
    page.goto("/")
    page.get_by_role("region", name=re.compile(r"^Reviews waiting for you")).get_by_role(
        "link", name="Create graces-orders from FastAPI service"
    ).click()
    expect(page).to_have_url(re.compile(re.escape(waiting_href) + r"[0-9a-f]+$"))
