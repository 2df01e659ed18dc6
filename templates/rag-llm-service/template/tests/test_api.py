"""The JSON API on the started service: ingest, documents, ask (whole and streamed), prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from prometheus_client import REGISTRY

from app.prompts import PromptError, PromptVersion
from app.rag_config import RagConfigError
from app.settings import Settings

from .conftest import started

FLUX_QUESTION = "How do I suspend the kustomization with flux?"


def sse_events(text: str) -> list[tuple[str, Any]]:
    """Parse a server-sent events body into (event, JSON data) pairs."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields = [line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")]
        if fields:
            found = dict(fields)
            events.append((found["event"], json.loads(found["data"])))
    return events


def test_ready_once_the_documents_are_ingested(client: TestClient) -> None:
    """Readiness reports the chunks and the embedding in use."""
    body = client.get("/readyz").json()
    assert body["status"] == "ready" and int(body["chunks"]) > 4
    assert str(body["embedding"]).startswith("lexical")


def test_a_question_gets_an_answer_with_numbered_citations(client: TestClient) -> None:
    """Extractive here: quotes, citations, the prompt version and the embedding recorded."""
    response = client.post("/api/ask", json={"question": FLUX_QUESTION})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "extractive" and "flux suspend kustomization web" in body["answer"]
    assert body["prompt"] == {"name": "qa", "version": 1, "label": "production"}
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0, "estimated": False}
    assert body["embedding"].startswith("lexical")
    first = body["citations"][0]
    assert set(first) == {"number", "source", "heading", "snippet", "score"}
    assert first["source"] == "rollback.md" and first["heading"] == "Rollback runbook > With Flux"
    assert f"[{first['number']}]" in body["answer"]


def test_nothing_relevant_is_i_dont_know(client: TestClient) -> None:
    """No passage above the threshold: no citations, mode none."""
    body = client.post("/api/ask", json={"question": "Which zebra quokka?"}).json()
    assert body["mode"] == "none" and body["citations"] == []
    assert body["answer"].startswith("I don't know")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"question": "   "}, "question", "ask a question: it is empty"),
        ({"question": "x" * 10_000}, "question", "at most 2,000 characters, got 10,000"),
        ({}, "question", "Field required"),
        ({"question": 3}, "question", "Input should be a valid string"),
        ({"question": "x", "prompt_label": "canary"}, "prompt_label", "unknown label 'canary'"),
        ({"question": "x", "label": "staging"}, "label", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_question_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, message: str
) -> None:
    """Never a 5xx for bad input."""
    response = client.post("/api/ask", json=body)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == field and message in error["message"]


def test_the_stream_sends_tokens_citations_and_done(client: TestClient) -> None:
    """Server-sent events whose tokens add up to the answer that done carries."""
    response = client.get("/api/ask/stream", params={"question": FLUX_QUESTION})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"token"}
    done = events[-1][1]
    assert done["answer"] == "".join(data["text"] for kind, data in events if kind == "token")
    assert events[-2][1]["citations"] == done["citations"] and done["mode"] == "extractive"


def test_the_stream_refuses_bad_input_before_streaming(client: TestClient) -> None:
    """A 422 naming the field, like the whole answer."""
    response = client.get("/api/ask/stream", params={"question": "x", "prompt_label": "nope"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "prompt_label"
    response = client.get("/api/ask/stream", params={"question": ""})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "question"


def test_the_labelled_prompt_answers(service_settings: Settings) -> None:
    """An LLM answer records the version of the label asked for."""

    def fakes(prompt: PromptVersion) -> BaseChatModel:
        return FakeListChatModel(responses=[f"Version {prompt.version} says [1]."])

    with started(service_settings, fakes) as client:
        body = client.post(
            "/api/ask", json={"question": FLUX_QUESTION, "prompt_label": "staging"}
        ).json()
    assert body["answer"] == "Version 2 says [1]." and body["mode"] == "llm"
    assert body["prompt"] == {"name": "qa", "version": 2, "label": "staging"}
    assert body["usage"]["estimated"] is True and body["model"] == "test-model"
    assert [c["number"] for c in body["citations"]] == [1]


class FakeGarbageChatModel(GenericFakeChatModel):
    """A chat model whose endpoint answers something that is not a chat completion."""

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        raise ValueError("Expecting value: line 1 column 1 (char 0)")


def test_an_llm_failure_is_a_502_with_the_reason(service_settings: Settings) -> None:
    """Whole: a 502 naming llm; streamed: an error event. Both counted as errors."""
    labels = {"model": "test-model", "prompt_version": "1", "status": "error"}
    before = REGISTRY.get_sample_value("llm_requests_total", labels) or 0.0
    reason = (
        "the LLM endpoint's answer is not an OpenAI-compatible chat completion "
        "(ValueError: Expecting value: line 1 column 1 (char 0))"
    )
    with started(service_settings, lambda p: FakeGarbageChatModel(messages=iter([]))) as client:
        response = client.post("/api/ask", json={"question": FLUX_QUESTION})
        events = sse_events(client.get("/api/ask/stream", params={"question": FLUX_QUESTION}).text)
    assert response.status_code == 502
    assert response.json() == {"errors": [{"field": "llm", "message": reason}]}
    assert events == [("error", {"field": "llm", "message": reason})]
    assert REGISTRY.get_sample_value("llm_requests_total", labels) == before + 2


def test_uploads_are_indexed_and_answer(client: TestClient) -> None:
    """A new runbook uploaded is found; the same bytes again change nothing."""
    files = [
        ("files", ("dns.md", b"# DNS\n\nFlush the resolver cache with resolvectl flush-caches.\n"))
    ]
    report = client.post("/api/ingest", files=files).json()["report"]
    assert report["added"] == ["dns.md"] and report["chunks"] == 1
    assert client.post("/api/ingest", files=files).json()["report"]["unchanged"] == ["dns.md"]
    body = client.post("/api/ask", json={"question": "How do I flush the resolver cache?"}).json()
    assert body["citations"][0]["source"] == "dns.md"
    documents = {d["source"]: d for d in client.get("/api/documents").json()["documents"]}
    assert documents["dns.md"]["origin"] == "upload" and documents["dns.md"]["chunks"] == 1
    assert documents["rollback.md"]["origin"] == "folder"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("image.png", b"\x89PNG", "image.png: unsupported file type (.png)"),
        ("big.md", b"x" * 20_001, "big.md: 20,001 bytes is over the limit of 20,000 bytes"),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "latin.txt: not UTF-8 text"),
        ("empty.md", b"  \n", "empty.md: no text to index"),
        ("ok.md", b"# Fine\n\nGood text.\n", "ok.md: given twice in one upload"),
    ],
)
def test_an_upload_with_a_bad_file_indexes_nothing(
    client: TestClient, name: str, content: bytes, message: str
) -> None:
    """The file is named (files[1]) and the good file beside it is not indexed either."""
    files = [("files", ("ok.md", b"# Fine\n\nGood text.\n")), ("files", (name, content))]
    response = client.post("/api/ingest", files=files)
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "files[1]" and message in error["message"]
    sources = [d["source"] for d in client.get("/api/documents").json()["documents"]]
    assert "ok.md" not in sources


def test_an_upload_without_files_is_refused(client: TestClient) -> None:
    """The multipart field is named."""
    response = client.post("/api/ingest", data={"other": "x"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "files"


def test_the_folder_is_ingested_again_and_paths_outside_are_refused(
    client: TestClient, service_settings: Settings
) -> None:
    """A changed file is updated, a removed one's chunks go; ../ cannot leave the folders."""
    docs = service_settings.docs_dir
    (docs / "certificates.md").unlink()
    (docs / "rollback.md").write_text("# Rollback\n\nRevert the commit.\n", encoding="utf-8")
    report = client.post("/api/ingest/folder").json()["report"]
    assert report["removed"] == ["certificates.md"] and report["updated"] == ["rollback.md"]
    assert client.post("/api/ingest/folder", json={}).json()["report"]["unchanged"]
    for path in ("../", "/etc", str(docs.parent)):
        response = client.post("/api/ingest/folder", json={"path": path})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "path"
    response = client.post("/api/ingest/folder", json={"path": "missing"})
    assert response.status_code == 422
    assert "no such folder" in response.json()["errors"][0]["message"]


def test_prompts_are_listed_with_their_labels(client: TestClient) -> None:
    """Every version, the labels pointing at it, and rag.yaml's default."""
    body = client.get("/api/prompts").json()
    assert [(p["name"], p["version"], p["labels"]) for p in body["prompts"]] == [
        ("qa", 1, ["production"]),
        ("qa", 2, ["staging"]),
    ]
    assert body["labels"] == {"qa": {"production": 1, "staging": 2}}
    assert body["default"] == {"name": "qa", "label": "production"}
    assert body["prompts"][0]["model_parameters"] == {"temperature": 0.1, "max_tokens": 256}


def test_the_index_says_how_questions_are_answered(client: TestClient) -> None:
    """Mode, model, embedding and the endpoints."""
    body = client.get("/api").json()
    assert (body["answers"], body["model"]) == ("extractive", "extractive")
    assert "POST /api/ask" in body["endpoints"] and body["chunks"] > 0


def test_requests_are_counted_by_route_template(client: TestClient) -> None:
    """http_requests_total labels the route, never the raw path; probes are not counted."""
    labels = {"method": "POST", "route": "/api/ask", "code": "422"}
    before = REGISTRY.get_sample_value("http_requests_total", labels) or 0.0
    client.post("/api/ask", json={"question": ""})
    client.get("/readyz")
    assert REGISTRY.get_sample_value("http_requests_total", labels) == before + 1
    assert (
        REGISTRY.get_sample_value(
            "http_requests_total", {"method": "GET", "route": "/readyz", "code": "200"}
        )
        is None
    )


def test_a_bad_prompt_file_stops_the_start_naming_every_problem(service_settings: Settings) -> None:
    """The rollout of a bad prompt change stalls; the previous pods keep serving."""
    version = service_settings.prompts_dir / "qa" / "v3.yaml"
    version.write_text("template: '{question}'\nvariables: [question, context]\n", encoding="utf-8")
    with pytest.raises(PromptError) as caught, started(service_settings):
        pass
    assert caught.value.problems == [
        "prompts/qa/v3.yaml line 1: note: missing",
        "prompts/qa/v3.yaml line 2: variables: must be the template's placeholders (question), "
        "got question, context",
    ]


def test_rag_yaml_naming_an_unknown_label_stops_the_start(service_settings: Settings) -> None:
    """So does a rag.yaml with a problem."""
    text = service_settings.rag_file.read_text(encoding="utf-8")
    service_settings.rag_file.write_text(text.replace("label: production", "label: canary"))
    with (
        pytest.raises(PromptError, match=r"rag\.yaml: prompt: unknown label 'canary'"),
        started(service_settings),
    ):
        pass
    service_settings.rag_file.write_text(text.replace("top_k: 3", "top_k: 0"))
    with (
        pytest.raises(RagConfigError, match=r"retrieval\.top_k: must be between 1 and 50"),
        started(service_settings),
    ):
        pass


def test_no_documents_folder_is_ready_with_nothing(
    service_settings: Settings, tmp_path: Path
) -> None:
    """Every answer is then "I don't know"."""
    settings = dataclasses.replace(service_settings, docs_dir=tmp_path / "none")
    with started(settings) as client:
        assert client.get("/readyz").json()["chunks"] == 0
        assert client.post("/api/ask", json={"question": FLUX_QUESTION}).json()["mode"] == "none"
