"""The create form in a real browser: sign-in first, then fields checked as they are typed."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser_server import initialised_settings, live_server

pytestmark = pytest.mark.browser

FORM = "/create/fastapi-service"


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal in local sign-in mode with the repo's catalog and a GitOps remote."""
    settings = initialised_settings(
        tmp_path_factory.mktemp("browser-form"),
        "browser-form-secret",
        gitops=True,
        run_worker=False,  # nothing is created here
    )
    with live_server(settings) as url:
        yield url


def _sign_in_from_the_form(page: Page) -> None:
    page.goto(FORM)
    prompt = page.get_by_role("region", name="Sign in to create a service")
    expect(prompt).to_be_visible()
    prompt.get_by_role("link", name="Sign in").click()
    page.locator('button[data-user="user:default/ada.lovelace"]').click()
    expect(page).to_have_url(re.compile(re.escape(FORM) + "$"))


def test_an_anonymous_visitor_is_asked_to_sign_in_before_any_question(page: Page) -> None:
    page.goto(FORM)
    expect(page.get_by_role("heading", name="Sign in to create a service")).to_be_visible()
    expect(page.locator("#scaffold-form")).to_have_count(0)
    expect(page.get_by_role("textbox")).to_have_count(0)  # not one question to fill in
    _sign_in_from_the_form(page)
    expect(page.get_by_role("textbox", name="Name")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in to create a service")).to_have_count(0)


def test_a_bad_name_is_reported_as_typed_and_only_on_the_name(page: Page) -> None:
    _sign_in_from_the_form(page)
    submitted: list[str] = []

    def watch(request: Request) -> None:
        if request.method == "POST" and request.url.endswith(FORM):
            submitted.append(request.url)

    page.on("request", watch)
    name = page.locator("#field-name")
    image = page.locator("#field-image_repository")
    name.press_sequentially("Bad_Name", delay=30)
    error = page.locator("#field-name-error")
    expect(error).to_contain_text("must be lower case")  # appeared without submitting
    expect(name).to_be_focused()
    expect(name).to_have_value("Bad_Name")  # nothing typed was lost
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(name).to_have_attribute("aria-describedby", "field-name-help field-name-error")
    expect(page.get_by_role("textbox", name="Name")).to_have_accessible_description(
        re.compile("Error: must be lower case")
    )
    # The image repository follows the name, but the user never touched it: no error there.
    expect(page.locator("#field-image_repository-error")).to_have_count(0)
    expect(image).not_to_have_attribute("aria-invalid", "true")
    name.press("Tab")  # leaving the name re-renders the dependent defaults (htmx)
    expect(image).to_have_value("registry.example.com/services/Bad_Name")
    expect(error).to_contain_text("must be lower case")  # kept through the re-render
    expect(page.locator("#field-image_repository-error")).to_have_count(0)
    expect(page.locator('[data-field="image_repository"].has-error')).to_have_count(0)

    # A name whose derived image repository cannot work is told on the name, too.
    name.fill("a--b")
    expect(error).to_contain_text("Image repository derived from it")
    expect(page.locator("#field-image_repository-error")).to_have_count(0)

    # Fixing it clears the error and the invalid state, and says the name is free.
    name.fill("")
    name.press_sequentially("air-quality-api", delay=20)
    expect(page.locator("#field-name-status")).to_have_text("air-quality-api is free.")
    expect(error).to_have_count(0)
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(name).to_have_attribute("aria-describedby", "field-name-help")
    # A field the person has not touched says nothing; one they changed is checked at once.
    expect(page.locator("#field-description-error")).to_have_count(0)
    page.locator("#field-port").fill("80")
    expect(page.locator("#field-port-error")).to_contain_text("between 1024 and 65535")
    assert submitted == [], "the form was submitted"
