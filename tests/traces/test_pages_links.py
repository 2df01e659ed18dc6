"""Links into the Traces pages: a catalog Component's recent and error traces, an SLO's traces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import Settings
from portal.integrations.trace_source import Trace, TraceSourceUnavailableError
from portal.traces.runtime import TracesRuntime
from tests.conftest import REPO
from tests.slo.live_data import spec
from tests.traces.fake_source import FakeTraceSource, span

SERVICE = "grafana"  # a Component of the repository's catalog
OK_TRACE, FAILED_TRACE = "1" * 32, "2" * 32


@pytest.fixture
def source() -> FakeTraceSource:
    """Two traces of the catalog's grafana: one fine, one failed."""
    return FakeTraceSource(
        [
            Trace(
                OK_TRACE, [span(OK_TRACE, "a" * 16, None, "GET /d/home", 0, 40, service=SERVICE)]
            ),
            Trace(
                FAILED_TRACE,
                [
                    span(
                        FAILED_TRACE,
                        "b" * 16,
                        None,
                        "POST /api/ds",
                        0,
                        9,
                        service=SERVICE,
                        status="ERROR",
                    )
                ],
            ),
        ]
    )


@pytest.fixture
def client(tmp_path: Path, source: FakeTraceSource) -> Iterator[TestClient]:
    """The app with the repo's catalog, an SLO of the service, and the fake trace source."""
    slos = tmp_path / "slos"
    slos.mkdir()
    (slos / "grafana.yaml").write_text(spec(SERVICE, ("availability", 99.9), owner="team-a"))
    settings = Settings(
        data_dir=tmp_path / "var",
        database_url=None,
        catalog_paths=[str(REPO / "catalog")],
        slo_paths=[str(slos)],
        secret_key="test-secret-key",
        run_worker=False,
    )
    initialise(settings)  # imports the catalog
    app = create_app(settings)
    app.state.traces = TracesRuntime(source)
    with TestClient(app) as test_client:
        yield test_client


def section(html: str, element_id: str) -> str:
    """Return the element with ``id`` up to its closing tag (a div)."""
    match = re.search(rf'<div id="{element_id}">.*?</div>', html, re.S)
    assert match, f"no #{element_id}"
    return match.group(0)


def test_a_component_shows_its_recent_and_error_traces(client: TestClient) -> None:
    html = client.get(f"/catalog/component/default/{SERVICE}").text
    assert 'id="entity-traces"' in html
    recent = section(html, "recent-traces")
    assert f"/traces/{OK_TRACE}" in recent and f"/traces/{FAILED_TRACE}" in recent
    failed = section(html, "error-traces")
    assert f"/traces/{FAILED_TRACE}" in failed and f"/traces/{OK_TRACE}" not in failed
    assert f'href="/traces?service={SERVICE}&amp;errors=true"' in html


def test_other_kinds_have_no_traces_section(client: TestClient, source: FakeTraceSource) -> None:
    html = client.get("/catalog/group/default/platform-team").text
    assert 'id="entity-traces"' not in html and source.queries == []


def test_an_unavailable_source_is_said_on_the_entity_page(
    client: TestClient, source: FakeTraceSource
) -> None:
    source.failure = TraceSourceUnavailableError("Tempo timed out")
    response = client.get(f"/catalog/component/default/{SERVICE}")
    assert response.status_code == 200 and "Tempo timed out" in response.text


def test_the_slo_page_links_to_error_and_slow_traces_in_the_burn_window(client: TestClient) -> None:
    html = client.get(f"/slos/{SERVICE}-availability").text
    links = dict(re.findall(r'<a href="([^"]+)" data-traces="(\w+)"', html))
    by_kind = {
        kind: parse_qs(urlsplit(href.replace("&amp;", "&")).query) for href, kind in links.items()
    }
    assert by_kind["errors"] == {"service": [SERVICE], "from": ["1h"], "errors": ["true"]}
    assert by_kind["slowest"] == {"service": [SERVICE], "from": ["1h"], "sort": ["slowest"]}
    # The link's query is one the Traces page accepts.
    for href in links:
        page = client.get(href.replace("&amp;", "&")).text
        assert "field-error" not in page.split('id="trace-results"')[1]
