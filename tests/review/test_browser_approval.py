"""The approval gate in a real browser: blocked with the reasons, and an admin's override.

A live portal whose cost ceiling (1 USD a month) every scaffold exceeds, so the real cost
checks fail; Alan (of another team) requests the changes, Grace and Ada review them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import initialised_settings, live_server, sign_in, sign_out

pytestmark = pytest.mark.browser

WORK_TIMEOUT_MS = 60_000  # render and checks normally take a few seconds
FAILED = ["cost (dev)", "cost (staging)", "cost (prod)"]
REASON = "The cost ceiling is raised for this team in OPS-7; the budget owner agreed."


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal with the repo's catalog, a GitOps remote, the worker and a low ceiling."""
    settings = initialised_settings(
        tmp_path_factory.mktemp("browser-approval"),
        "browser-approval-secret",
        gitops=True,
        run_worker=True,
        cost_max_monthly_usd=1.0,
    )
    with live_server(settings) as url:
        yield url


def wait_ready(page: Page, path: str) -> None:
    """Open the change at ``path`` and wait until its checks have run."""
    page.goto(path)
    status = page.locator(".page-head [data-status]")
    expect(status).to_have_text("ready for review", timeout=WORK_TIMEOUT_MS)


def ready_change(page: Page, name: str, description: str = "Reads sensors") -> str:
    """Have Alan request ``name`` (through the API, signed in) and wait until it is checked."""
    sign_in(page, "alan.turing", "/reviews")
    answers = {"name": name, "owner": "platform-team", "description": description}
    created = page.request.post(
        "/api/scaffold", data={"template": "fastapi-service", "answers": answers}
    )
    assert created.status == 202, created.text()
    path = f"/reviews/{created.json()['id']}"
    wait_ready(page, path)
    sign_out(page)
    return path


def test_a_blocked_approval_shows_the_reasons_instead_of_the_button(page: Page) -> None:
    path = ready_change(page, "sensor-reader")
    sign_in(page, "grace.hopper", path)
    blocking = page.locator('[data-gate="blocking"]')
    expect(blocking).to_contain_text("Approval is blocked: 3 checks failed or could not run")
    expect(blocking.get_by_role("listitem")).to_have_text(FAILED)
    expect(page.get_by_role("button", name="Approve and merge")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve over failing checks")).to_have_count(0)
    explanation = page.locator('[data-approve="blocked"]')
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text("ask a member of platform-admins to approve over them")
    # The other decisions stay open to the reviewer.
    expect(page.get_by_role("button", name="Request changes")).to_be_visible()
    expect(page.locator('[data-check="cost (prod)"] [data-check-status]')).to_have_text("failed")


def test_an_admin_approves_over_failing_checks_with_a_reason(page: Page) -> None:
    path = ready_change(page, "sensor-writer")
    sign_in(page, "ada.lovelace", path)
    expect(page.get_by_role("button", name="Approve and merge")).to_have_count(0)
    reason = page.get_by_role("textbox", name="Approve over failing checks")
    submit = page.get_by_role("button", name="Approve over failing checks")
    # Without a reason the browser keeps the form (the server would refuse it too).
    submit.click()
    assert reason.evaluate("element => element.validity.valueMissing") is True
    expect(page.locator(".page-head [data-status]")).to_have_text("ready for review")

    reason.fill(REASON)
    submit.click()
    expect(page.locator(".page-head [data-status]")).to_have_text("merged")
    banner = page.locator(".override-banner")
    expect(banner).to_contain_text(f"Approved over failing checks by ada.lovelace: {REASON}")
    expect(banner).to_contain_text("cost (dev), cost (staging), cost (prod)")
    audit = page.locator("#audit tr", has_text="approve-override")
    expect(audit).to_contain_text(REASON)
