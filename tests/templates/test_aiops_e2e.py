"""End to end: the AIOps detector proposes a scale-out to a served portal with its API token.

One portal is served by uvicorn on a loopback port (trusted-header mode, SQLite, a real
GitOps repository). The air-quality-monitor template scaffolds ``munich-air`` through the
portal's own pipeline (render, checks, approval, merge, catalog import), and a member of
the owning team creates the detector's service-account token with ``POST /api/tokens``.
The template's ``Remediations`` and ``PortalClient`` then run in this process with a real
``httpx`` client: a matched anomaly becomes a change that the review list and page show
with its evidence, whose checks pass, that another person approves, and after which
``main``'s overlay builds an HPA with the raised minimum. Bad, expired, revoked and
out-of-scope tokens and edits outside the service folder are refused with the portal's
reason, recorded as failed, and write nothing to the GitOps repository.

The checks run the way the portal's tests run them (``run_pending``, no background
worker), without checkov and promtool, which have tests of their own.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape
from sqlmodel import Session

from portal.app import create_app
from portal.auth.models import ServiceToken
from portal.cli import initialise
from portal.clock import utcnow
from portal.config import AuthMode, Settings
from portal.scaffold.jobs import run_pending
from portal.scaffold.runtime import ScaffoldRuntime
from tests.browser_server import live_server
from tests.conftest import ADA, GRACE, REPO, require_tool
from tests.templates.aiops_support import (
    MainOverlayState,
    anomaly,
    branches,
    detector_name,
    git,
    handle_window,
    main_hpa_bounds,
    propose_payload,
)

pytestmark = pytest.mark.integration

SERVICE = "munich-air"
ENVIRONMENT = "prod"
TOKEN_NAME = "munich-air-detector"
QUERY = (
    "histogram_quantile(0.95, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{namespace="munich-air"}[5m])))'
)
DETECTOR_URL = "http://munich-air-detector.example.com"
RULE = "munich-air-latency"
OVERLAY = f"services/{SERVICE}/deploy/overlays/{ENVIRONMENT}/kustomization.yaml"
RULES = f"""\
dry_run: false
detector_url: {DETECTOR_URL}
rules:
  - name: {RULE}
    signal:
      query: '{QUERY}'
      min_severity: critical
    action: {{type: scale_out, service: {SERVICE}, environment: {ENVIRONMENT}, step: 1, max: 6}}
"""
T0 = datetime(2026, 3, 9, 14, 30, tzinfo=UTC)
WINDOW_START = T0 - timedelta(minutes=20)


@dataclass
class Stage:
    """The served portal, its app, the GitOps remote and the detector's token."""

    url: str
    app: FastAPI
    remote: Path
    scratch: Path
    kubectl: Path
    token: str

    def http(self) -> httpx.Client:
        """Return a client of the served portal (loopback only, no proxies)."""
        return httpx.Client(base_url=self.url, trust_env=False, timeout=30)

    def state(self) -> MainOverlayState:
        """Return the detector's state reader: the bounds ``main``'s overlay builds."""
        return MainOverlayState(self.remote, self.scratch, self.kubectl)

    def run_checks(self) -> int:
        """Run the pending stages (render, checks) of every change, as the portal's tests do."""
        scaffold: ScaffoldRuntime = self.app.state.scaffold
        return run_pending(scaffold.context)

    def bounds(self) -> tuple[int, int]:
        """Return the HPA bounds ``main``'s prod overlay of the service builds."""
        return main_hpa_bounds(self.remote, SERVICE, ENVIRONMENT, self.scratch, self.kubectl)


def _settings(root: Path) -> Settings:
    """Settings of a proxied portal with the repo's catalog, templates and GitOps seed."""
    settings = Settings(
        data_dir=root / "var",
        database_url=None,  # SQLite in the data dir, whatever the environment says
        auth_mode=AuthMode.TRUSTED_HEADER,
        catalog_paths=[str(REPO / "catalog")],
        secret_key="aiops-e2e-secret",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,  # the test runs each stage itself
    )
    report = initialise(settings, gitops=True)
    assert report is not None and report.problems == [], report
    return settings


def _scaffold(client: httpx.Client, stage_app: FastAPI) -> None:
    """Scaffold the service through the portal: render, checks, approval by another person."""
    body = {
        "template": "air-quality-monitor",
        "answers": {"name": SERVICE, "owner": "platform-team"},
    }
    created = client.post("/api/scaffold", json=body, headers=ADA)
    assert created.status_code == 202, created.text
    change_id = created.json()["id"]
    scaffold: ScaffoldRuntime = stage_app.state.scaffold
    assert run_pending(scaffold.context) == 1
    approved = client.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "merged", approved.json()


def _new_token(client: httpx.Client, services: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": TOKEN_NAME, "services": services, **extra}
    created = client.post("/api/tokens", json=body, headers=GRACE)
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    return answer


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """A served portal with munich-air on main and a token for it, made by its owning team."""
    kubectl = require_tool("kubectl")
    root = tmp_path_factory.mktemp("aiops-e2e")
    settings = _settings(root)
    app = create_app(settings)
    scaffold: ScaffoldRuntime = app.state.scaffold
    scaffold.context.check_tools = dataclasses.replace(
        scaffold.context.check_tools, kubectl=kubectl, checkov=None, promtool=None
    )
    with live_server(settings, app) as url, httpx.Client(base_url=url, trust_env=False) as client:
        _scaffold(client, app)
        token = _new_token(client, [SERVICE])
        yield Stage(
            url=url,
            app=app,
            remote=settings.data_dir / "gitops" / "remote.git",
            scratch=root / "scratch",
            kubectl=kubectl,
            token=token["token"],
        )


def _detect(stage: Stage, token: str, state: MainOverlayState) -> tuple[list[Any], Any]:
    """A fresh detector with ``token`` handles a critical latency anomaly of the service."""
    window = anomaly(QUERY, WINDOW_START, T0, 3.25, "critical")
    return handle_window(stage.url, token, RULES, window, state, lambda: T0)


def _evidence(page: str) -> dict[str, str]:
    """Return the evidence list of a change page: each label and what is shown for it."""
    listed = page.split('<ul class="evidence">', 1)[1].split("</ul>", 1)[0]
    items = re.findall(r"<li><strong>(.*?)</strong>:\s*(.*?)\s*</li>", listed, re.DOTALL)
    return dict(items)


def _main_overlay(stage: Stage) -> list[str]:
    return git(stage.remote, "show", f"main:{OVERLAY}").splitlines()


def test_the_detector_proposes_a_scale_out_that_is_reviewed_checked_approved_and_merged(
    stage: Stage,
) -> None:
    assert stage.bounds() == (2, 4)  # the template's prod defaults
    overlay = _main_overlay(stage)

    records, remediations = _detect(stage, stage.token, stage.state())
    [record] = records
    assert record.status == "proposed", record.detail
    assert record.action == "scale_out" and record.rule == RULE
    assert record.change_url.startswith(f"{stage.url}/api/changes/")
    change_id = record.change_url.rsplit("/", 1)[1]
    assert record.detail == f"change {change_id} (checking)"
    assert remediations.log.newest_first() == [record]
    title = f"Scale out {SERVICE} in {ENVIRONMENT}: HPA minimum 2 to 3 (AIOps rule {RULE})"
    assert record.title == title

    with stage.http() as portal:
        listed = portal.get("/reviews", headers={**ADA, "Accept": "text/html"})
        assert listed.status_code == 200
        assert f'<a href="/reviews/{change_id}">{escape(title)}</a>' in listed.text
        assert f"token <strong>{TOKEN_NAME}</strong>" in listed.text

        page = portal.get(f"/reviews/{change_id}", headers={**ADA, "Accept": "text/html"}).text
        assert 'id="proposal"' in page and f"({TOKEN_NAME})" in page
        chart = detector_name("chart_url")(
            DETECTOR_URL, anomaly(QUERY, WINDOW_START, T0, 3.25, "critical")
        )
        assert chart.startswith(f"{DETECTOR_URL}/?query=")
        span = f"{WINDOW_START.isoformat()} to {T0.isoformat()} (20 min)"
        assert _evidence(page) == {
            "query": f'<span class="evidence-text">{escape(QUERY)}</span>',
            "anomaly window": f'<span class="evidence-text">{span}</span>',
            "scores": '<span class="evidence-text">peak score 3.250, threshold 1.000, '
            "severity critical, detector both</span>",
            "chart": f'<a href="{escape(chart)}" rel="noopener noreferrer nofollow" '
            f'target="_blank">{escape(chart)}</a>',
        }
        assert "raise the HPA minimum from 2 to 3" in page  # the reason says what it does

        assert stage.run_checks() == 1
        change = portal.get(f"/api/changes/{change_id}", headers=ADA).json()
        assert change["status"] == "ready", change
        checks = {check["name"]: check["status"] for check in change["checks"]}
        assert {f"kustomize ({ENVIRONMENT})", f"schema ({ENVIRONMENT})", "collisions"} <= set(
            checks
        )
        assert all(status in ("passed", "warning") for status in checks.values()), checks

        # The token proposes and never decides; its creator is the change's author.
        token_vote = portal.post(
            f"/api/changes/{change_id}/approve",
            json={},
            headers={"Authorization": f"Bearer {stage.token}"},
        )
        assert token_vote.status_code == 403, token_vote.text
        by_creator = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
        assert by_creator.status_code == 403 and "author" in by_creator.json()["detail"]
        approved = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "merged"

    assert stage.bounds() == (3, 4)
    # The detector's JSON 6902 edit changed one line; comments and the rest stay as they were.
    changed = [
        line
        for line in difflib.unified_diff(overlay, _main_overlay(stage), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-        value: 2", "+        value: 3"]


def _expired(stage: Stage, client: httpx.Client) -> str:
    created = _new_token(client, [SERVICE], expires_at=(utcnow() + timedelta(days=1)).isoformat())
    with Session(stage.app.state.engine) as session:
        row = session.get(ServiceToken, created["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)  # no waiting for a real expiry
        session.add(row)
        session.commit()
    token: str = created["token"]
    return token


def _revoked(client: httpx.Client) -> str:
    created = _new_token(client, [SERVICE])
    revoked = client.post(f"/api/tokens/{created['id']}/revoke", json={}, headers=GRACE)
    assert revoked.status_code == 200, revoked.text
    token: str = created["token"]
    return token


def _token(stage: Stage, kind: str) -> str:
    """Return a token of the given kind, made through the portal's token API."""
    with stage.http() as client:
        if kind == "wrong secret":
            return stage.token[:-6] + ("aaaaaa" if not stage.token.endswith("aaaaaa") else "bbbbbb")
        if kind == "not a portal token":
            return "eyJhbGciOiJIUzI1NiJ9.e30.x"
        if kind == "expired":
            return _expired(stage, client)
        if kind == "revoked":
            return _revoked(client)
        assert kind == "scoped to another service"
        token: str = _new_token(client, ["portal"])["token"]  # also platform-team's
        return token


@pytest.mark.parametrize(
    ("kind", "status", "reason"),
    [
        ("wrong secret", 401, "the API token is unknown or its secret is wrong"),
        ("not a portal token", 401, "sign in, send the proxy's identity headers, or an API token"),
        ("expired", 401, f"({TOKEN_NAME}) expired at "),
        ("revoked", 401, f"({TOKEN_NAME}) was revoked at "),
        (
            "scoped to another service",
            403,
            f"may not propose changes to {SERVICE}: it is scoped to changes:propose for portal",
        ),
    ],
)
def test_a_refused_token_is_recorded_as_failed_with_the_portals_reason(
    stage: Stage, kind: str, status: int, reason: str
) -> None:
    token = _token(stage, kind)
    before = branches(stage.remote)
    state = stage.state()
    records, remediations = _detect(stage, token, state)  # never raises, whatever the portal says
    [record] = records
    assert state.reads == 1  # the proposal was built from main's bounds, then refused
    assert record.status == "failed" and record.change_url is None
    assert record.detail.startswith(f"the portal refused ({status}): "), record.detail
    assert reason in record.detail
    assert record.payload is not None and record.payload["service"] == SERVICE
    assert remediations.log.newest_first() == [record]
    assert branches(stage.remote) == before


def _hand_made(path: str) -> dict[str, Any]:
    """A proposal as a detector could send it: the scale-out's overlay edit, then ``path``."""
    low, high = 10, 10  # never tested: the path is refused before any edit is applied
    patch = detector_name("replica_bounds_patch")
    return {
        "service": SERVICE,
        "title": f"Scale out {SERVICE}",
        "reason": "Latency anomaly; more replicas.",
        "evidence": [{"label": "query", "text": QUERY}],
        "edits": [
            {
                "path": OVERLAY,
                "patch": {
                    "type": "json6902",
                    "target": {"kind": "Kustomization"},
                    "patch": [
                        {"op": "replace", "path": "/patches/0/patch", "value": patch(low, high)}
                    ],
                },
            },
            {"path": path, "content": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"},
        ],
    }


OUTSIDE = f"is outside services/{SERVICE}/ and clusters/<env>/services/{SERVICE}.yaml"


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("clusters/prod/infrastructure.yaml", OUTSIDE),
        ("services/portal/deploy/base/deployment.yaml", OUTSIDE),
        (f"services/{SERVICE}/../portal/kustomization.yaml", "'..' path segments are refused"),
    ],
)
def test_an_edit_outside_the_service_folder_is_refused_naming_the_path(
    stage: Stage, path: str, named: str
) -> None:
    before = branches(stage.remote)
    outcome = propose_payload(stage.url, stage.token, _hand_made(path))
    assert not outcome.ok and outcome.change_url is None
    # Only the second edit is at fault, and the refusal names it, its path and why.
    prefix = "the portal refused (422): the edits were refused: edits[1].path: "
    assert outcome.detail.startswith(prefix), outcome.detail
    assert path in outcome.detail and named in outcome.detail
    assert ";" not in outcome.detail.removeprefix(prefix)  # no other field was refused
    assert branches(stage.remote) == before
