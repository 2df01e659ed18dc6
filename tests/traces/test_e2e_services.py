"""End to end: generated services export their traces to a live test portal.

Each service is rendered from its template and run for real, from its runtime lock (uvicorn
in a child process, as the image runs it), with ``OTEL_EXPORTER_OTLP_ENDPOINT`` at one
portal on a loopback port (the embedded store; loopback needs no token). The air-quality
service is fed by a loopback Open-Meteo stand-in, the RAG service answers with a loopback
OpenAI-compatible stand-in. After a few real requests the portal's API and waterfall show
their spans nested as the services made them: the Open-Meteo client span under the request
span; the RAG question's retrieval and its GenAI ``chat`` span (model, token counts) under
its request span, and a failing LLM call as an error trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from portal.scaffold.registry.manifest import load_template
from tests.templates.air_quality_app import FIXTURES, LAHORE, open_meteo_stand_in
from tests.templates.llm_standin import LLMStandIn, serving_standin
from tests.templates.rag_render import DEFAULTS, render_rag, runtime_python, service_env
from tests.templates.rag_render import published_template as published_rag
from tests.templates.rendering import TEMPLATES_DIR, Rendered, published_template, render_service
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv
from tests.traces.service_traces import (
    TracePortal,
    assert_drawn_under,
    assert_nested,
    moment,
    root_of,
    span_named,
    trace_portal,
)

pytestmark = pytest.mark.integration

AIR_QUALITY = TEMPLATES_DIR / "air-quality-monitor"
ROUTE = "GET /api/assessment"
FETCH = "open-meteo air-quality"  # the client span of the Open-Meteo call
ASK = "POST /api/ask"
ROLLBACK = "How do I roll back a release that breaks the SLO?"
MODEL = "standin/chat-1"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracePortal]:
    """The test portal both services export to."""
    with trace_portal(tmp_path_factory.mktemp("portal")) as served:
        yield served


@pytest.fixture(scope="module")
def air_quality(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """A rendered air-quality service of its own name."""
    answers: dict[str, object] = {"name": f"aq-{uuid4().hex[:8]}", "owner": "platform-team"}
    with published_template(AIR_QUALITY, tmp_path_factory.mktemp("data")) as published:
        info = load_template(AIR_QUALITY)
        yield render_service(info, published, answers, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def rag(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """The RAG service rendered with the template's default answers."""
    with published_rag(tmp_path_factory.mktemp("rag-data")) as published:
        yield render_rag(published, DEFAULTS, tmp_path_factory.mktemp("rag-gitops"))


def test_the_air_quality_spans_arrive_nested_in_the_waterfall(
    portal: TracePortal, air_quality: Rendered, tmp_path: Path
) -> None:
    name = str(air_quality.answers["name"])
    recorded = (air_quality.dest / FIXTURES / LAHORE).read_bytes()
    python = lock_venv(air_quality.dest / RUNTIME_LOCK, AIR_QUALITY.name)
    with open_meteo_stand_in(recorded) as open_meteo:
        # No background refresh: the first request finds no data and fetches it inside its
        # own span (with the refresh loop the fetch could land in a trace of its own).
        env = offline_env(
            OPEN_METEO_URL=open_meteo,
            MODEL_DIR=str(tmp_path / "models"),
            LOG_LEVEL="WARNING",
            BACKGROUND_REFRESH="false",
            **portal.exporting_env(),
        )
        with (
            serving_app(air_quality.dest, env, python=python) as url,
            httpx.Client(base_url=url, trust_env=False, timeout=60) as client,
        ):
            assert client.get("/api/assessment").status_code == 200
            assert client.get("/contract/nowhere").status_code == 404
            trace = portal.wait_for({"service": name, "operation": FETCH}, ROUTE)
            unmatched = {"service": name, "attr": "http.route=unmatched"}
            missing = portal.wait_for(unmatched, "GET unmatched")

    root = root_of(trace)
    assert (root["name"], root["kind"]) == (ROUTE, "SERVER")
    assert root["service"] == name and root["resource"]["service.name"] == name
    assert root["attributes"]["http.response.status_code"] == 200
    client_span = span_named(trace, FETCH)
    assert client_span["kind"] == "CLIENT"
    assert_nested(trace, client_span, root)  # maybe deeper than a child: still inside it
    assert client_span["attributes"]["url.full"].startswith(open_meteo)
    html = portal.waterfall(trace["trace_id"])
    assert_drawn_under(html, client_span)
    assert f'href="/catalog/component/default/{name}"' in html
    assert root_of(missing)["attributes"]["http.response.status_code"] == 404


def test_the_rag_question_and_its_genai_span_arrive_nested(
    portal: TracePortal, rag: Rendered, tmp_path: Path
) -> None:
    name = str(rag.answers["name"])
    standin = LLMStandIn(["Suspend the Flux Kustomization, ", "then revert the commit [1]."])
    with serving_standin(standin) as llm:
        env = service_env(
            tmp_path / "index", LLM_BASE_URL=llm.url, LLM_MODEL=MODEL, **portal.exporting_env()
        )
        with (
            serving_app(rag.dest, env, python=runtime_python(rag), ready_path="/readyz") as url,
            httpx.Client(base_url=url, trust_env=False, timeout=30) as client,
        ):
            ask = {"question": ROLLBACK}
            assert client.post("/api/ask", json=ask).status_code == 200
            answered = {"service": name, "attr": f"gen_ai.request.model={MODEL}"}
            trace = portal.wait_for(answered, ASK)
            llm.garbage = True  # the LLM answers 200 with an HTML page: a failed call
            assert client.post("/api/ask", json=ask).status_code == 502
            failed = portal.wait_for({"service": name, "errors": "true"}, ASK)

    root = root_of(trace)
    assert (root["kind"], root["service"]) == ("SERVER", name)
    assert root["attributes"]["http.response.status_code"] == 200
    retrieve, embed = span_named(trace, "retrieve"), span_named(trace, "embed")
    chat = span_named(trace, f"chat {MODEL}")
    assert_nested(trace, retrieve, root)
    assert_nested(trace, embed, retrieve)
    assert_nested(trace, chat, root)
    assert moment(retrieve["end"]) <= moment(
        chat["start"]
    )  # the passages are found before the LLM is asked
    assert chat["kind"] == "CLIENT" and chat["status"] != "ERROR"
    facts = chat["attributes"]
    assert (facts["gen_ai.operation.name"], facts["gen_ai.request.model"]) == ("chat", MODEL)
    assert facts["gen_ai.response.model"] == standin.model  # what the endpoint says it ran
    usage = (facts["gen_ai.usage.input_tokens"], facts["gen_ai.usage.output_tokens"])
    assert usage == (standin.prompt_tokens, standin.completion_tokens)
    html = portal.waterfall(trace["trace_id"])
    assert_drawn_under(html, chat)
    assert_drawn_under(html, embed)
    assert f"input tokens: {standin.prompt_tokens}" in html
    assert f"output tokens: {standin.completion_tokens}" in html

    failed_root = root_of(failed)
    assert failed_root["attributes"]["http.response.status_code"] == 502
    failed_chat = span_named(failed, f"chat {MODEL}")
    assert_nested(failed, failed_chat, failed_root)
    assert failed_chat["status"] == "ERROR"
    assert "not an OpenAI-compatible" in failed_chat["status_message"]
    assert [event["name"] for event in failed_chat["events"]] == ["exception"]
