"""The rag-llm-service's page in Chromium: a question's answer grows as the LLM streams it,
then its numbered citations appear with their sources.

The default render is served as its image runs it (its runtime lock, uvicorn in a child
process, offline), answering with a local OpenAI-compatible stand-in over real HTTP
whose stream holds after its first tokens until the test has seen them on the page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser_server import require_chromium
from tests.templates.llm_standin import LLMStandIn, serving_standin
from tests.templates.rag_render import (
    DEFAULTS,
    published_template,
    render_rag,
    runtime_python,
    service_env,
)
from tests.templates.service_process import serving_app

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TOKENS = [
    "Suspend the ",
    "Flux Kustomization",
    ", then revert ",
    "the commit [1]",
    " and push it [2].",
]
HELD_AFTER = 2  # the page must show the first two tokens, and only them, before the rest
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def standin() -> Iterator[LLMStandIn]:
    llm = LLMStandIn(list(TOKENS), delay=0.05, hold_after=HELD_AFTER, model="standin-chat-1")
    with serving_standin(llm) as served:
        yield served


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory, standin: LLMStandIn) -> Iterator[str]:
    """The rendered service, answering with the stand-in (the ``page`` fixture's site)."""
    require_chromium()
    with published_template(tmp_path_factory.mktemp("data")) as published:
        service = render_rag(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))
    env = service_env(
        tmp_path_factory.mktemp("rag-data"), LLM_BASE_URL=standin.url, LLM_MODEL="standin/chat-1"
    )
    python = runtime_python(service)
    with serving_app(service.dest, env, python=python, ready_path="/readyz") as url:
        yield url


def _ask(page: Page, question: str) -> None:
    page.goto("/")
    page.wait_for_load_state("load")  # htmx and its SSE extension are deferred scripts
    page.get_by_role("textbox", name="Question").fill(question)
    page.get_by_role("button", name="Ask").click()


def test_the_answer_grows_as_it_streams_then_its_citations_appear(
    page: Page, standin: LLMStandIn
) -> None:
    _ask(page, "How do I roll back a release that breaks the SLO?")
    answer = page.locator("#answer-text")
    status = page.locator("#answer [role=status]")
    # Held by the stand-in: the first tokens are on the page, the rest and the sources not yet.
    expect(answer).to_have_text("".join(TOKENS[:HELD_AFTER]), timeout=TIMEOUT_MS)
    expect(status).to_have_text("Answering…")
    expect(page.locator("ol.citations")).to_have_count(0)
    standin.release()
    expect(answer).to_have_text("".join(TOKENS), timeout=TIMEOUT_MS)
    citations = page.locator("ol.citations > li")
    expect(citations).to_have_count(2, timeout=TIMEOUT_MS)
    first = citations.nth(0)
    expect(first.locator(".cite-number")).to_have_text("[1]")
    expect(first.locator("code").first).to_have_text(re.compile(r"^[\w.-]+\.md$"))
    expect(first.locator("blockquote")).not_to_be_empty()
    expect(citations.nth(1).locator(".cite-number")).to_have_text("[2]")
    expect(status).to_contain_text("LLM answer (standin-chat-1)", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("321 prompt + 17 completion tokens")
    sources = citations.locator("code").all_text_contents()
    assert "rollback.md" in sources, sources


def test_a_question_about_nothing_in_the_documents_says_so_without_sources(page: Page) -> None:
    _ask(page, "What is the recipe for a sourdough loaf with rye flour?")
    expect(page.locator("#answer-text")).to_contain_text("I don't know", timeout=TIMEOUT_MS)
    expect(page.locator("#answer [role=status]")).to_contain_text("not answered")
    expect(page.locator("ol.citations")).to_have_count(0)
