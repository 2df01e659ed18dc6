"""The page: the form, the htmx fragment that opens the stream, the streamed HTML, no-JS."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult

from app.prompts import PromptVersion
from app.settings import Settings

from .conftest import SERVICE_ROOT, started

HTMX = {"HX-Request": "true"}
QUESTION = "How do I suspend the kustomization with flux?"


def html_events(text: str) -> list[tuple[str, str]]:
    """Parse server-sent events whose data is HTML (over several data lines)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if lines:
            kind = next(line[len("event: ") :] for line in lines if line.startswith("event: "))
            data = "\n".join(line[len("data: ") :] for line in lines if line.startswith("data: "))
            events.append((kind, data))
    return events


def test_the_page_has_the_form_the_mode_and_the_documents(client: TestClient) -> None:
    """The page: htmx and its SSE extension served from here, labels to choose, what answers."""
    page = client.get("/").text
    assert (
        '<form class="card ask" action="/ask" method="get" hx-get="/ask" hx-target="#answer"'
        in page
    )
    assert '<script src="/static/htmx.min.js" defer></script>' in page
    assert '<script src="/static/sse.min.js" defer></script>' in page
    assert '<option value="production" selected>production (qa v1)</option>' in page
    assert '<option value="staging">staging (qa v2)</option>' in page
    assert "Extractive answers:" in page and "lexical (HashingVectorizer" in page
    assert "4 documents," in page and "<code>rollback.md</code>" in page
    for asset in ("htmx.min.js", "sse.min.js"):
        assert client.get(f"/static/{asset}").status_code == 200


def test_htmx_gets_a_fragment_that_opens_the_stream(client: TestClient) -> None:
    """sse-connect carries the question; tokens append, the rest swap in; done closes it."""
    response = client.get("/ask", params={"question": f"  {QUESTION} "}, headers=HTMX)
    assert response.status_code == 200
    fragment = response.text
    assert "<html" not in fragment
    assert (
        'hx-ext="sse" sse-connect="/ask/stream?question=How+do+I+suspend+the+kustomization+with'
        '+flux%3F&amp;prompt_label=production" sse-close="done"'
    ) in fragment
    assert 'sse-swap="token" hx-swap="beforeend"' in fragment
    for event in ("citations", "done", "error"):
        assert f'sse-swap="{event}"' in fragment


def test_a_bad_question_is_a_422_fragment_naming_it(client: TestClient) -> None:
    """The 422 is swapped in by htmx (the page's htmx-config says so); nothing streams."""
    response = client.get("/ask", params={"question": " "}, headers=HTMX)
    assert response.status_code == 422
    assert "question: ask a question: it is empty" in response.text
    assert "sse-connect" not in response.text
    label = client.get("/ask", params={"question": "x", "prompt_label": "canary"}, headers=HTMX)
    assert label.status_code == 422 and "prompt_label: unknown label" in label.text
    assert '{"code": "422", "swap": true, "error": false}' in client.get("/").text


def test_the_stream_sends_html_tokens_citations_and_the_mode(client: TestClient) -> None:
    """Tokens escaped in spans, the sources list, then done with mode, prompt and embedding."""
    response = client.get("/ask/stream", params={"question": QUESTION})
    assert response.status_code == 200
    events = html_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"token"}
    assert events[0][1].startswith("<span>&#34;") and events[0][1].endswith("</span>")
    citations, done = events[-2][1], events[-1][1]
    assert '<ol class="citations">' in citations and "<code>rollback.md</code>" in citations
    assert "Extractive answer: quoted from the passages" in done
    assert "prompt qa v1 (production)" in done and "embedding lexical" in done


def test_the_stream_answers_bad_input_with_an_error_and_done(client: TestClient) -> None:
    """Always 200: an EventSource retries any other status."""
    response = client.get("/ask/stream", params={"question": "", "prompt_label": "production"})
    assert response.status_code == 200
    events = html_events(response.text)
    assert [kind for kind, _ in events] == ["error", "done"]
    assert "question: ask a question: it is empty" in events[0][1]


def test_without_javascript_the_form_loads_the_answered_page(client: TestClient) -> None:
    """The same form, submitted by the browser, answers in one piece."""
    page = client.get("/ask", params={"question": QUESTION, "prompt_label": "staging"}).text
    assert "<html" in page and "flux suspend kustomization web" in page
    assert '<option value="staging" selected>' in page
    assert "prompt qa v2 (staging)" in page and '<ol class="citations">' in page
    refused = client.get("/ask", params={"question": "x" * 2_001})
    assert refused.status_code == 422 and 'aria-invalid="true"' in refused.text


def test_llm_tokens_are_escaped_and_the_model_shown(service_settings: Settings) -> None:
    """What the LLM writes is text, never markup; the page names the model."""

    def fakes(prompt: PromptVersion) -> BaseChatModel:
        return FakeListChatModel(responses=["<b>bold</b> [1]"])

    with started(service_settings, fakes) as client:
        page = client.get("/").text
        events = html_events(client.get("/ask/stream", params={"question": QUESTION}).text)
    assert "Answers are written by <strong>test-model</strong>" in page
    tokens = [data for kind, data in events if kind == "token"]
    assert all(data.startswith("<span>") and data.endswith("</span>") for data in tokens)
    text = "".join(data[len("<span>") : -len("</span>")] for data in tokens)
    assert text == "&lt;b&gt;bold&lt;/b&gt; [1]"
    assert "LLM answer (test-model)" in events[-1][1]
    assert "tokens (estimated)" in events[-1][1]


class FakeDownChatModel(GenericFakeChatModel):
    """A chat model whose endpoint fails."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise ValueError("no JSON")


def test_an_llm_failure_shows_its_reason(service_settings: Settings) -> None:
    """Streamed: an error event then done; without JavaScript: a 502 page with the reason."""
    with started(service_settings, lambda p: FakeDownChatModel(messages=iter([]))) as client:
        events = html_events(client.get("/ask/stream", params={"question": QUESTION}).text)
        page = client.get("/ask", params={"question": QUESTION})
    assert [kind for kind, _ in events] == ["error", "done"]
    assert 'role="alert">the LLM endpoint&#39;s answer is not an OpenAI-compatible' in events[0][1]
    assert page.status_code == 502 and "(ValueError: no JSON)" in page.text


def test_the_vendored_scripts_are_listed_with_their_licenses() -> None:
    """Each third-party file has its license beside it and a line in THIRD_PARTY.md."""
    static = SERVICE_ROOT / "app" / "static"
    listing = (static / "THIRD_PARTY.md").read_text(encoding="utf-8")
    assert "`htmx-ext-sse`" in listing and "2.2.4" in listing and "`sse.LICENSE`" in listing
    assert "Zero Clause" in (static / "sse.LICENSE").read_text(encoding="utf-8")
    assert 'defineExtension("sse"' in (static / "sse.min.js").read_text(encoding="utf-8")
