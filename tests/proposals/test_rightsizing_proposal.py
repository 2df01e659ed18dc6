"""``POST /cost/{service}/right-size``: a recommendation becomes a reviewed change, for real.

A real GitOps repository with the test service on main, the real kustomize, catalog and
review pages; only the usage metrics (p95 figures) and measured days are given by a fake.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlmodel import Session, select

from portal.app import create_app
from portal.changes.models import Change
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.integrations.cost_metrics import FakeUsageMetrics
from portal.integrations.kubernetes import kustomize_build
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, REPO, csrf_token, require_tool, runtime
from tests.cost.test_service_pages import PROD, FakeServiceCostRuntime, estimate, usage_of
from tests.proposals.seed import SERVICE, git, push_to_main, remote_of, seed_service

OVERLAY = f"services/{SERVICE}/deploy/overlays/prod"
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings]]:
    """One app for the module (SQLite) with the test service on main; tests run in order."""
    base = tmp_path_factory.mktemp("right-size")
    settings = Settings(
        data_dir=base / "var",
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        seed_service(client, settings, base / "someone")
        yield client, settings


def given_usage(client: TestClient, metrics: FakeUsageMetrics | None) -> None:
    fake = FakeServiceCostRuntime(estimate(), [], metrics)
    client.app.state.cost = fake  # type: ignore[attr-defined]


def right_size(client: TestClient, who: dict[str, str], **form: str) -> Response:
    token = csrf_token(client, f"/cost/{SERVICE}")
    return client.post(
        f"/cost/{SERVICE}/right-size",
        data={"csrf_token": token, **form},
        headers={**who, **HTML},
        follow_redirects=False,
    )


def branch_file(settings: Settings, branch: str, path: str) -> str:
    return git(remote_of(settings), "show", f"{branch}:{path}")


def test_refusals_say_why_and_write_nothing(app: tuple[TestClient, Settings]) -> None:
    client, settings = app
    given_usage(client, FakeUsageMetrics(containers=[usage_of(PROD, 450, 1000)]))
    branches = git(remote_of(settings), "branch", "--list")

    outsider = right_size(client, ALAN, environment="prod")
    assert outsider.status_code == 403
    assert "Only members of group:default/platform-team" in outsider.text

    lean = right_size(client, GRACE, environment="prod")
    assert lean.status_code == 422
    # 450m x 1.2 = 540m is above the 500m request; 1000Mi x 1.2 = 1200Mi above 1024Mi.
    assert "No recommendation for prod: app: p95 450m + 20% headroom = 540m" in lean.text

    nowhere = right_size(client, GRACE, environment="qa")
    assert nowhere.status_code == 422
    assert "no such container on main" in nowhere.text

    given_usage(client, None)
    blind = right_size(client, GRACE, environment="prod")
    assert blind.status_code == 422
    assert "PORTAL_PROMETHEUS_URL" in blind.text

    forged = client.post(
        f"/cost/{SERVICE}/right-size", data={"environment": "prod"}, headers={**GRACE, **HTML}
    )
    assert forged.status_code == 403  # no CSRF token
    assert git(remote_of(settings), "branch", "--list") == branches


def test_one_click_proposes_a_change_lowering_the_requests(
    app: tuple[TestClient, Settings], tmp_path: Path
) -> None:
    client, settings = app
    given_usage(client, FakeUsageMetrics(containers=[usage_of(PROD, 58, 150)]))
    # The form says where; posted numbers would be ignored (the server recomputes them).
    response = right_size(client, GRACE, environment="prod", cpu="1m", saving="9999")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    change_id = re.fullmatch(r"/reviews/([^/]+)", location)
    assert change_id is not None
    with Session(runtime(client).context.engine) as session:
        change = session.get(Change, change_id.group(1))
        assert change is not None
        title, reason, evidence, branch = (
            change.title,
            change.reason,
            change.evidence,
            change.branch,
        )
        assert change.requester_ref == "user:default/grace.hopper"
    # 0.43 cores x 3 x 730 x 0.031611 + 844Mi x 3 x 730 x 0.004237 / 1024 = 37.416...
    assert title == "Right-size air-quality in prod: save 37.42 USD/month"
    assert reason is not None and "p95 usage over" in reason and "20% headroom" in reason
    labels = [item["label"] for item in evidence or []]
    assert labels[0].startswith("p95 usage of app, ")
    assert labels[1:] == ["usage window", "monthly saving", "cost page"]
    texts = {item["label"]: item.get("text") or item.get("url") for item in evidence or []}
    assert texts[labels[0]] == "CPU 500m -> 70m (p95 58m), memory 1024Mi -> 180Mi (p95 150Mi)"
    assert texts["monthly saving"] == "37.42 USD/month (app: 37.42)"
    assert texts["cost page"] == f"http://testserver/cost/{SERVICE}"

    patch = yaml.safe_load(branch_file(settings, branch, f"{OVERLAY}/right-sizing.yaml"))
    assert patch["kind"] == "Deployment" and patch["metadata"]["name"] == SERVICE
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container == {
        "name": "app",
        "resources": {"requests": {"cpu": "70m", "memory": "180Mi"}},
    }
    kustomization = branch_file(settings, branch, f"{OVERLAY}/kustomization.yaml")
    assert "  - path: scale.yaml\n  - path: right-sizing.yaml\n" in kustomization

    # What kustomize builds from the branch: the lowered requests, limits untouched.
    tree = tmp_path / "tree"
    subprocess.run(
        ["git", "clone", "-q", "-b", branch, str(remote_of(settings)), str(tree)], check=True
    )
    objects = kustomize_build(tree / OVERLAY, kubectl=require_tool("kubectl"))
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (built,) = deployment["spec"]["template"]["spec"]["containers"]
    assert built["resources"] == {
        "requests": {"cpu": "70m", "memory": "180Mi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }

    listing = client.get("/reviews", headers={**ADA, **HTML}).text
    assert "Right-size air-quality in prod: save 37.42 USD/month" in listing
    assert f'href="/reviews/{change_id.group(1)}"' in listing

    # The change's own cost check prices the lowered requests against main: the saving.
    run_pending(runtime(client).context)
    checks = client.get(f"/api/changes/{change_id.group(1)}").json()["checks"]
    [cost] = [check for check in checks if check["name"] == "cost (prod)"]
    assert "(-37.42 vs main)" in cost["summary"], cost


def test_a_second_right_sizing_edits_the_same_patch_file(
    app: tuple[TestClient, Settings], tmp_path: Path
) -> None:
    client, settings = app
    with Session(runtime(client).context.engine) as session:
        first = session.exec(select(Change).where(Change.service == SERVICE)).one()
        branch = first.branch
    # The first change merged (as a reviewer would, without waiting for its checks here).
    files = {
        path: branch_file(settings, branch, path)
        for path in (f"{OVERLAY}/right-sizing.yaml", f"{OVERLAY}/kustomization.yaml")
    }
    push_to_main(settings, tmp_path / "merger", files, "Merge the first right-sizing")

    given_usage(client, FakeUsageMetrics(containers=[usage_of(PROD, 20, 150)]))
    response = right_size(client, GRACE, environment="prod", container="app")
    assert response.status_code == 303, response.text
    change_id = response.headers["location"].rsplit("/", 1)[1]
    with Session(runtime(client).context.engine) as session:
        second = session.get(Change, change_id)
        assert second is not None
        branch, title = second.branch, second.title
    # 70m -> 30m (20m x 1.2 = 24m, up to 30m): 0.04 cores x 3 x 730 x 0.031611 = 2.7691236;
    # memory stays at 180Mi.
    assert title == "Right-size air-quality in prod: save 2.77 USD/month"
    changed = git(remote_of(settings), "diff", "--name-only", f"main...{branch}").split()
    assert changed == [f"{OVERLAY}/right-sizing.yaml"]  # the kustomization lists it already
    text = branch_file(settings, branch, f"{OVERLAY}/right-sizing.yaml")
    assert "cpu: 30m" in text and "memory: 180Mi" in text
    assert text.startswith("# Requests lowered to measured use")  # edited, not rewritten
    assert Decimal("2.7691236") == Decimal("0.04") * 3 * 730 * Decimal("0.031611")
