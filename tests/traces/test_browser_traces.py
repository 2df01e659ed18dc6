"""The Traces pages in Chromium on the embedded store: search with live filtering, open a
waterfall, expand and collapse spans, see a GenAI span's model and tokens.

The portal is real throughout: its traces arrive through its own receiver (``POST
/v1/traces``, the encodings services send) and are read back from its database.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import initialised_settings, live_server
from tests.traces.sample_exports import (
    CHAT_MODEL,
    CLIENT_SPAN,
    ERROR_TRACE,
    GENAI_SPAN,
    GENAI_TRACE,
    MODEL_SERVICE,
    OPEN_METEO,
    RAG_SERVICE,
    REQUEST_SPAN,
    REQUEST_TRACE,
    send_samples,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live portal whose store holds the three sample traces, sent to its receiver."""
    settings = initialised_settings(tmp_path_factory.mktemp("traces-browser"), "browser-secret")
    with (
        live_server(settings) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=10) as portal,
    ):
        # Ten minutes ago: inside the retention, and every span of the samples in the past.
        send_samples(portal, time.time_ns() - 600 * 1_000_000_000)
        yield url


def test_search_open_a_waterfall_and_expand_a_span(page: Page) -> None:
    page.goto("/traces")
    page.wait_for_load_state("load")
    results = page.locator("#trace-results tbody tr[data-trace-id]")
    expect(results).to_have_count(3)

    # Live filtering: typing a service narrows the rows, and the URL holds the query.
    page.locator("#q-service").fill(RAG_SERVICE)
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-trace-id", GENAI_TRACE)
    expect(page).to_have_url(re.compile(rf"/traces\?.*service={RAG_SERVICE}"))
    page.locator("#q-service").fill("")
    page.select_option("#q-errors", "true")
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-trace-id", ERROR_TRACE)
    page.select_option("#q-errors", "")
    # An attribute the store indexed: the Open-Meteo span's host finds its trace only.
    page.locator("#q-attr").fill(f"server.address={OPEN_METEO}")
    expect(results).to_have_count(1)
    expect(results.first).to_have_attribute("data-trace-id", REQUEST_TRACE)
    page.locator("#q-attr").fill("")
    page.locator("#q-min_ms").fill("soon")
    expect(page.locator("#q-min_ms-error")).to_contain_text("min_ms must be a number")
    page.locator("#q-min_ms").fill("")
    expect(results).to_have_count(3)

    page.locator(f'tr[data-trace-id="{REQUEST_TRACE}"] a').click()
    expect(page).to_have_url(re.compile(rf"/traces/{REQUEST_TRACE}$"))
    page.wait_for_load_state("load")
    rows = page.locator(".wf-row")
    expect(rows).to_have_count(4)  # three spans of air-quality, one of aqi-model's export
    root = page.locator(f'.wf-row[data-span-id="{REQUEST_SPAN}"]')
    expect(root).to_have_attribute("data-critical", "true")

    # Expand the Open-Meteo span's details: its attributes show.
    client_span = page.locator(f'.wf-row[data-span-id="{CLIENT_SPAN}"]')
    expect(client_span).to_have_attribute("data-parent-id", REQUEST_SPAN)
    attributes = client_span.locator(".span-attributes")
    expect(attributes).to_be_hidden()
    client_span.locator("summary").click()
    expect(attributes).to_contain_text(OPEN_METEO)

    # Collapse the root: its children hide; expand it again: they come back.
    root.locator(".wf-toggle").first.click()
    expect(client_span).to_be_hidden()
    expect(root).to_be_visible()
    root.locator(".wf-toggle").first.click()
    expect(client_span).to_be_visible()

    # The second service links to its catalog entity.
    expect(
        page.locator(f'#trace-services a[href="/catalog/component/default/{MODEL_SERVICE}"]')
    ).to_be_visible()


def test_a_genai_span_shows_its_model_and_token_counts(page: Page) -> None:
    page.goto(f"/traces/{GENAI_TRACE}")
    chat = page.locator(f'.wf-row[data-span-id="{GENAI_SPAN}"]')
    expect(chat.locator('[data-genai="model"]')).to_have_text(f"model: {CHAT_MODEL}")
    expect(chat.locator('[data-genai="input tokens"]')).to_contain_text("412")
    expect(chat.locator('[data-genai="output tokens"]')).to_contain_text("96")
