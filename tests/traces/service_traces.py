"""A live test portal that generated services export their traces to, and reading them back.

Shared by the end-to-end cases of tests/traces/test_e2e_services.py: the portal (the
embedded store, loopback senders need no token), the environment that points a service's
OpenTelemetry SDK at it, waiting until a request's trace has arrived, and the checks that a
trace's spans nest as the service made them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from portal.config import Settings
from tests.browser_server import live_server

WAIT_SECONDS = 30.0
Json = dict[str, Any]


@dataclass(frozen=True)
class TracePortal:
    """A live portal on a loopback port: its URL and a client of it."""

    url: str
    client: httpx.Client

    def exporting_env(self) -> dict[str, str]:
        """Return what makes a service's SDK export its spans here, within 0.1 s (not 5 s)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}

    def find(self, params: Mapping[str, str], root: str) -> Json | None:
        """Return the newest trace matching ``params`` whose root span is ``root``, if any."""
        search = self.client.get("/api/traces", params=dict(params))
        assert search.status_code == 200, search.text
        found = [item for item in search.json()["items"] if item["root_operation"] == root]
        if not found:
            return None
        trace: Json = self.client.get(f"/api/traces/{found[0]['trace_id']}").json()
        return trace

    def wait_for(self, params: Mapping[str, str], root: str) -> Json:
        """Return the trace matching ``params`` with root ``root`` once it arrived (30 s)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            trace = self.find(params, root)
            if trace is not None:
                return trace
            time.sleep(0.1)  # the exporter sends within 0.1 s; the portal stores at once
        held = self.client.get("/api/traces", params={"limit": "20"}).json()["items"]
        seen = sorted({f"{item['root_service']}: {item['root_operation']}" for item in held})
        raise AssertionError(
            f"no trace with root {root!r} matching {params} within 30 s; the portal holds {seen}"
        )

    def waterfall(self, trace_id: str) -> str:
        """Return the HTML of the trace's waterfall page."""
        page = self.client.get(f"/traces/{trace_id}")
        assert page.status_code == 200, page.text
        return page.text


@contextmanager
def trace_portal(folder: Path) -> Iterator[TracePortal]:
    """Serve a portal with its data in ``folder`` (SQLite, local auth, no catalog)."""
    settings = Settings(
        data_dir=folder / "var",
        database_url=None,
        catalog_paths=[],
        secret_key="test-secret-key",
        run_worker=False,
    )
    with (
        live_server(settings) as url,
        httpx.Client(base_url=url, trust_env=False, timeout=10) as client,
    ):
        yield TracePortal(url, client)


def root_of(trace: Json) -> Json:
    """Return the trace's root span (the API lists it first), checked to have no parent."""
    root: Json = trace["spans"][0]
    assert root["parent_span_id"] is None and root["depth"] == 0, root
    return root


def span_named(trace: Json, name: str) -> Json:
    """Return the trace's span called ``name`` (exactly one)."""
    found: list[Json] = [span for span in trace["spans"] if span["name"] == name]
    assert len(found) == 1, f"{len(found)} spans named {name!r} in {trace['trace_id']}"
    return found[0]


def assert_nested(trace: Json, child: Json, ancestor: Json) -> None:
    """Check ``child`` descends from ``ancestor`` (parent links, depth) and lies within it."""
    by_id = {span["span_id"]: span for span in trace["spans"]}
    chain = [child]
    while chain[-1]["parent_span_id"] is not None:
        chain.append(by_id[chain[-1]["parent_span_id"]])
    ids = [span["span_id"] for span in chain]
    assert ancestor["span_id"] in ids[1:], f"{child['name']} is not under {ancestor['name']}"
    assert child["depth"] == ancestor["depth"] + ids.index(ancestor["span_id"])
    start, end = moment(ancestor["start"]), moment(ancestor["end"])
    assert start <= moment(child["start"]) <= moment(child["end"]) <= end


def moment(text: str) -> datetime:
    """Return a time of the API's JSON (ISO 8601) as a datetime, to compare."""
    return datetime.fromisoformat(text)


def assert_drawn_under(html: str, span: Json) -> None:
    """Check the waterfall draws ``span``'s row under its parent, at its depth."""
    row = re.search(
        rf'data-span-id="{span["span_id"]}" data-parent-id="([0-9a-f]*)" data-depth="(\d+)"',
        html,
    )
    assert row, f"no row of span {span['name']} in the waterfall"
    assert row.groups() == (span["parent_span_id"] or "", str(span["depth"]))
