"""The rag-llm-service's generated app, served as the image runs it (from its runtime lock),
offline: the shipped documents ingested at start, questions answered extractively with
citations quoting the cited documents, uploads indexed (and refused, named), answers
streamed as server-sent events; and with ``LLM_BASE_URL`` pointing at a local
OpenAI-compatible stand-in over real HTTP, its answer, its usage and the LLM metrics, and
its garbage refused as a 502 with the reason.

One served app per configuration (module-scoped); the questions and what a render holds
are tested in test_rag_llm.py, the page in tests/test_browser_rag.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from portal.scaffold.registry.bundled import PublishedTemplate
from tests.templates.llm_standin import LLMStandIn, serving_standin
from tests.templates.rag_render import (
    DEFAULTS,
    published_template,
    render_rag,
    runtime_python,
    service_env,
)
from tests.templates.rendering import Rendered
from tests.templates.service_process import serving_app

pytestmark = pytest.mark.integration

ROLLBACK = "How do I roll back a release that breaks the SLO?"
UNRELATED = "What is the recipe for a sourdough loaf with rye flour?"
MODEL = "standin/chat-1"
MAX_UPLOAD_BYTES = 20_000
ZEBRA = b"# Zebra feeding\n\nThe zebras are fed twice a day with hay from the north barn.\n"
STANDIN_TOKENS = ["Suspend the ", "Flux Kustomization", ", then revert ", "the commit [1]."]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    with published_template(tmp_path_factory.mktemp("data")) as template:
        yield template


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_rag(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def extractive(
    default_service: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The default render (no LLM: extractive answers), with a small upload limit."""
    env = service_env(tmp_path_factory.mktemp("rag-data"), MAX_UPLOAD_BYTES=str(MAX_UPLOAD_BYTES))
    python = runtime_python(default_service)
    with (
        serving_app(default_service.dest, env, python=python, ready_path="/readyz") as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def standin() -> Iterator[LLMStandIn]:
    with serving_standin(LLMStandIn(list(STANDIN_TOKENS))) as served:
        yield served


@pytest.fixture(scope="module")
def with_llm(
    default_service: Rendered, standin: LLMStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    """The default render answering with the stand-in (LLM_BASE_URL overrides the answer)."""
    env = service_env(
        tmp_path_factory.mktemp("rag-llm-data"), LLM_BASE_URL=standin.url, LLM_MODEL=MODEL
    )
    python = runtime_python(default_service)
    with (
        serving_app(default_service.dest, env, python=python, ready_path="/readyz") as url,
        httpx.Client(base_url=url, trust_env=False, timeout=30) as client,
    ):
        yield client


def _flat(text: str) -> str:
    return " ".join(text.split())


def _errors(response: httpx.Response) -> dict[str, str]:
    return {item["field"]: item["message"] for item in response.json()["errors"]}


def _events(client: httpx.Client, question: str) -> list[tuple[str, dict[str, Any]]]:
    """Read a whole ``/api/ask/stream`` answer: its (event, JSON data) pairs, in order."""
    with client.stream("GET", "/api/ask/stream", params={"question": question}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    found = []
    for block in re.split(r"\r?\n\r?\n", body):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            found.append((fields["event"], json.loads(fields["data"])))
    return found


def _sample(scraped: str, name: str, **labels: str) -> float:
    """Return the value of the sample of ``name`` with exactly ``labels`` (0 when absent)."""
    for line in scraped.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match[1])) == labels:
            return float(match[2])
    return 0.0


# --- extractive (the default render) ---------------------------------------------------------


def test_ready_once_the_shipped_documents_are_ingested(
    extractive: httpx.Client, default_service: Rendered
) -> None:
    ready = extractive.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    shipped = sorted(path.name for path in (default_service.dest / "docs").glob("*.md"))
    listed = extractive.get("/api/documents").json()
    folder = {d["source"]: d for d in listed["documents"] if d["origin"] == "folder"}
    assert sorted(folder) == shipped and len(shipped) >= 10
    assert ready.json()["chunks"] >= sum(d["chunks"] for d in folder.values()) > len(shipped)


def test_a_question_is_answered_by_quoting_the_cited_documents(
    extractive: httpx.Client, default_service: Rendered
) -> None:
    answered = extractive.post("/api/ask", json={"question": ROLLBACK})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["mode"] == "extractive" and body["model"] == "extractive"
    assert body["prompt"] == {"name": "qa", "version": 1, "label": "production"}
    assert body["embedding"].startswith("lexical")
    citations = body["citations"]
    assert citations and "rollback.md" in {c["source"] for c in citations}
    for citation in citations:
        document = _flat((default_service.dest / "docs" / citation["source"]).read_text())
        quoted = [part.strip() for part in _flat(citation["snippet"]).split("…")]
        assert all(part and part in document for part in quoted), citation
        assert f"[{citation['number']}]" in body["answer"]  # every citation is used
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert numbers == {c["number"] for c in citations}


def test_a_question_about_nothing_in_the_documents_is_not_answered(
    extractive: httpx.Client,
) -> None:
    answered = extractive.post("/api/ask", json={"question": UNRELATED})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["mode"] == "none" and body["citations"] == []
    assert body["answer"].startswith("I don't know")


def test_an_upload_is_indexed_once_and_answers_questions(extractive: httpx.Client) -> None:
    files = {"files": ("zebra-feeding.md", ZEBRA, "text/markdown")}
    added = extractive.post("/api/ingest", files=files)
    assert added.status_code == 200, added.text
    assert added.json()["report"]["added"] == ["zebra-feeding.md"]
    listed = {d["source"]: d for d in extractive.get("/api/documents").json()["documents"]}
    assert listed["zebra-feeding.md"]["origin"] == "upload"
    assert listed["zebra-feeding.md"]["chunks"] == 1
    again = extractive.post("/api/ingest", files=files)
    assert again.status_code == 200, again.text
    report = again.json()["report"]
    assert (report["unchanged"], report["added"], report["updated"]) == (
        ["zebra-feeding.md"],
        [],
        [],
    )
    answered = extractive.post("/api/ask", json={"question": "How often are the zebras fed?"})
    (first, *_) = answered.json()["citations"]
    assert first["source"] == "zebra-feeding.md" and "twice a day" in first["snippet"]


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("huge.md", b"# Huge\n\n" + b"words " * MAX_UPLOAD_BYTES, "over the limit"),
        ("tool.exe", b"MZ\x90\x00", "unsupported file type (.exe)"),
    ],
)
def test_an_upload_that_cannot_be_indexed_is_refused_naming_the_file(
    extractive: httpx.Client, name: str, data: bytes, problem: str
) -> None:
    good = ("fine.md", b"# Fine\n\nA fine document.\n", "text/markdown")
    files = [("files", good), ("files", (name, data, "application/octet-stream"))]
    refused = extractive.post("/api/ingest", files=files)
    assert refused.status_code == 422, refused.text
    message = _errors(refused)["files[1]"]
    assert name in message and problem in message
    sources = {d["source"] for d in extractive.get("/api/documents").json()["documents"]}
    assert not {"fine.md", name} & sources  # nothing of a refused upload is indexed


def test_a_streamed_answer_sends_tokens_then_citations_then_done(
    extractive: httpx.Client,
) -> None:
    events = _events(extractive, ROLLBACK)
    kinds = [kind for kind, _ in events]
    tokens = kinds.count("token")
    assert tokens >= 1 and kinds == ["token"] * tokens + ["citations", "done"], kinds
    done = events[-1][1]
    assert "".join(data["text"] for kind, data in events if kind == "token") == done["answer"]
    assert events[-2][1]["citations"] == done["citations"] != []
    assert done["mode"] == "extractive"


# --- with an OpenAI-compatible endpoint (the stand-in, over HTTP) ----------------------------


def test_the_llm_answers_with_the_passages_and_its_usage_is_counted(
    with_llm: httpx.Client, standin: LLMStandIn
) -> None:
    before = with_llm.get("/metrics").text
    asked = len(standin.requests)
    answered = with_llm.post("/api/ask", json={"question": ROLLBACK})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert (body["answer"], body["mode"]) == (standin.text, "llm")
    assert body["usage"] == {"input_tokens": 321, "output_tokens": 17, "estimated": False}
    assert [c["number"] for c in body["citations"]] == [1]  # the answer cites [1] only
    (request,) = standin.requests[asked:]
    assert request["model"] == MODEL
    prompt = "\n".join(str(message["content"]) for message in request["messages"])
    assert ROLLBACK in prompt and f"[1] {body['citations'][0]['source']}" in prompt
    after = with_llm.get("/metrics").text
    for kind, tokens in (("prompt", 321), ("completion", 17)):
        grown = _sample(after, "llm_tokens_total", type=kind, model=MODEL)
        assert grown - _sample(before, "llm_tokens_total", type=kind, model=MODEL) == tokens
    ok = {"model": MODEL, "prompt_version": "1", "status": "ok"}
    assert (
        _sample(after, "llm_requests_total", **ok) - _sample(before, "llm_requests_total", **ok)
        == 1
    )


def test_the_llm_answer_streams_its_tokens_with_the_usage_of_the_last_chunk(
    with_llm: httpx.Client, standin: LLMStandIn
) -> None:
    asked = len(standin.requests)
    events = _events(with_llm, ROLLBACK)
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert tokens == STANDIN_TOKENS
    assert [kind for kind, _ in events][-2:] == ["citations", "done"]
    done = events[-1][1]
    assert (done["answer"], done["mode"]) == (standin.text, "llm")
    assert done["usage"] == {"input_tokens": 321, "output_tokens": 17, "estimated": False}
    (request,) = standin.requests[asked:]
    assert request["stream"] is True and request["stream_options"] == {"include_usage": True}


def test_an_endpoint_answering_garbage_is_a_502_with_the_reason(
    with_llm: httpx.Client, standin: LLMStandIn
) -> None:
    failed = {"model": MODEL, "prompt_version": "1", "status": "error"}
    before = _sample(with_llm.get("/metrics").text, "llm_requests_total", **failed)
    standin.garbage = True
    try:
        answered = with_llm.post("/api/ask", json={"question": ROLLBACK})
        streamed = _events(with_llm, ROLLBACK)
    finally:
        standin.garbage = False
    assert answered.status_code == 502, answered.text
    assert "not an OpenAI-compatible chat completion" in _errors(answered)["llm"]
    assert streamed[-1][0] == "error"
    assert "not an OpenAI-compatible" in streamed[-1][1]["message"]
    after = _sample(with_llm.get("/metrics").text, "llm_requests_total", **failed)
    assert after - before == 2
    # Nothing to answer from: no LLM call, whatever the endpoint would say.
    standin.garbage = True
    try:
        unrelated = with_llm.post("/api/ask", json={"question": UNRELATED})
    finally:
        standin.garbage = False
    assert unrelated.status_code == 200 and unrelated.json()["mode"] == "none"
