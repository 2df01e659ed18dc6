"""The Traces pages on a fake source: search form, results, errors, the waterfall, 404/400."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.config import Settings
from portal.integrations.trace_source import TraceSourceError, TraceSourceUnavailableError
from portal.traces.runtime import TracesRuntime
from tests.conftest import REPO
from tests.traces.fake_source import ERROR_TRACE, GENAI_TRACE, REQUEST_TRACE, FakeTraceSource

HX = {"HX-Request": "true"}


@pytest.fixture
def source() -> FakeTraceSource:
    """The fake source the app reads."""
    return FakeTraceSource()


@pytest.fixture
def client(tmp_path: Path, source: FakeTraceSource) -> Iterator[TestClient]:
    """The whole app (SQLite) with its trace source replaced by the fake."""
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=None,
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        run_worker=False,
    )
    app = create_app(settings)
    app.state.traces = TracesRuntime(source)
    with TestClient(app) as test_client:
        yield test_client


def rows(html: str) -> list[str]:
    """Return the trace ids of the result rows, in order."""
    return re.findall(r'<tr data-trace-id="([0-9a-f]{32})"', html)


def test_search_lists_newest_first_with_the_error_mark(client: TestClient) -> None:
    response = client.get("/traces")
    assert response.status_code == 200
    assert 'aria-current="page">Traces<' in response.text
    assert set(rows(response.text)) == {REQUEST_TRACE, ERROR_TRACE, GENAI_TRACE}
    error_row = re.search(rf'<tr data-trace-id="{ERROR_TRACE}"[^>]*>.*?</tr>', response.text, re.S)
    assert error_row and "error-badge" in error_row.group(0)
    ok_row = re.search(rf'<tr data-trace-id="{REQUEST_TRACE}"[^>]*>.*?</tr>', response.text, re.S)
    assert ok_row and "error-badge" not in ok_row.group(0)
    assert "air-quality · GET /aqi" in ok_row.group(0) and ">4<" in ok_row.group(0)


def test_the_query_string_reaches_the_source(client: TestClient, source: FakeTraceSource) -> None:
    url = "/traces?service=air-quality&min_ms=50&errors=true&attr=http.route%3D%2Faqi&from=1h"
    response = client.get(url)
    assert response.status_code == 200
    query = source.queries[-1]
    assert query.service == "air-quality" and query.min_duration_ms == 50
    assert query.errors_only and query.attribute == ("http.route", "/aqi")
    assert query.start is not None
    # The form shows what was asked for.
    assert 'name="min_ms" id="q-min_ms" value="50"' in response.text


def test_htmx_gets_only_the_results(client: TestClient) -> None:
    response = client.get("/traces?service=rag", headers=HX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="trace-results"')
    assert "<form" not in response.text
    assert rows(response.text) == [GENAI_TRACE]


def test_slowest_first(client: TestClient) -> None:
    assert rows(client.get("/traces?sort=slowest").text) == [
        GENAI_TRACE,
        REQUEST_TRACE,
        ERROR_TRACE,
    ]


def test_bad_fields_are_shown_beside_them_and_nothing_is_searched(
    client: TestClient, source: FakeTraceSource
) -> None:
    response = client.get("/traces?min_ms=fast&limit=0&sort=sideways")
    assert response.status_code == 200
    assert source.queries == []
    html = response.text
    assert 'id="q-min_ms-error"' in html and "min_ms must be a number" in html
    assert re.search(r'name="min_ms"[^>]*aria-invalid="true"', html)
    assert "limit must be a whole number" in html and "sort must be one of" in html
    assert rows(html) == []


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (TraceSourceUnavailableError("Tempo at http://tempo:3200 timed out"), "is unavailable"),
        (TraceSourceError("GET /api/search answered HTML"), "cannot read"),
    ],
)
def test_a_failing_source_is_said_not_a_500(
    client: TestClient, source: FakeTraceSource, failure: TraceSourceError, said: str
) -> None:
    source.failure = failure
    response = client.get("/traces")
    assert response.status_code == 200
    assert said in response.text and str(failure) in response.text
    trace = client.get(f"/traces/{REQUEST_TRACE}", headers={"Accept": "text/html"})
    assert trace.status_code == 503 and said in trace.text


def waterfall_rows(html: str) -> list[tuple[str, str, int]]:
    """Return (span id, parent id, depth) of each waterfall row, in order."""
    found = re.findall(
        r'data-span-id="([0-9a-f]{16})" data-parent-id="([0-9a-f]*)" data-depth="(\d+)"', html
    )
    return [(span, parent, int(depth)) for span, parent, depth in found]


def test_waterfall_nests_spans_and_marks_the_critical_path(client: TestClient) -> None:
    response = client.get(f"/traces/{REQUEST_TRACE}")
    assert response.status_code == 200
    html = response.text
    a, b, c, d = ("a" * 16, "b" * 16, "c" * 16, "d" * 16)
    assert waterfall_rows(html) == [(a, "", 0), (b, a, 1), (c, a, 1), (d, a, 1)]
    critical = set(re.findall(r'data-span-id="([0-9a-f]{16})"[^>]*data-critical="true"', html))
    # The request waited for the model (ends last), then Open-Meteo; validate overlapped it
    # (2-12 ms against 10-100 ms), so the request never waited for it.
    assert critical == {a, c, d}
    # Each service links to its catalog entity; the bars carry the service's colour.
    assert 'href="/catalog/component/default/air-quality"' in html
    assert 'href="/catalog/component/default/aqi-model"' in html
    assert re.search(r'class="wf-bar svc-1" x="83\.333%"', html)  # predict: 100 of 120 ms
    assert "http.response.status_code" in html and "service.version" in html
    assert '<script src="/static/traces.js" defer></script>' in html


def test_exceptions_and_genai_facts_are_shown(client: TestClient) -> None:
    failed = client.get(f"/traces/{ERROR_TRACE}").text
    assert "span-exception" in failed and "ValueError" in failed
    assert "no station near 91.0,0.0" in failed
    genai = client.get(f"/traces/{GENAI_TRACE}").text
    assert 'data-genai="model">model: qwen2.5:0.5b' in genai
    assert "input tokens: 412" in genai and "output tokens: 96" in genai


def test_an_upper_case_id_is_the_same_trace(client: TestClient) -> None:
    assert client.get(f"/traces/{REQUEST_TRACE.upper()}").status_code == 200


@pytest.mark.parametrize(
    ("trace_id", "status"),
    [("f" * 32, 404), ("xyz", 400), ("0" * 31, 400), ("g" * 32, 400), ("a" * 33, 400)],
)
def test_unknown_is_404_and_malformed_is_400(
    client: TestClient, trace_id: str, status: int
) -> None:
    response = client.get(f"/traces/{trace_id}", headers={"Accept": "text/html"})
    assert response.status_code == status
    assert "<h1>" in response.text and (
        "no trace" in response.text or "32 hexadecimal" in response.text
    )


def test_static_files_are_served(client: TestClient) -> None:
    assert client.get("/static/traces.css").status_code == 200
    assert "wf-toggle" in client.get("/static/traces.js").text
