"""An app whose GitOps main has a service naming a model, and a registry of its versions.

Shared by the promotion tests: the real GitOps repository, catalog import, kustomize and
review flow; only the model registry is the in-memory fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlmodel import Session

from portal.app import create_app
from portal.catalog.importer import import_locations
from portal.changes.gitops import GitOpsFileReader
from portal.changes.models import Change
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.integrations.mlflow import FakeModelRegistry, ModelVersion, RegisteredModel
from portal.proposals.promote_model_routes import app_model_registry
from portal.review.checks import CheckTools
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, REPO, require_tool, runtime
from tests.proposals.seed import SERVICE, git, push_to_main, remote_of, seed_service

MODEL = f"{SERVICE}-air-quality"
OVERLAY = f"services/{SERVICE}/deploy/overlays"
CATALOG = f"services/{SERVICE}/catalog-info.yaml"
HTML = {"Accept": "text/html"}
# holdout_mae by version: 2 beats the baseline 1, 3 is worse than 2, 4 the best.
MAE = {"1": 1.0, "2": 0.9, "3": 1.2, "4": 0.85}
TAGS = {"primary_metric": "holdout_mae", "primary_metric_direction": "lower", "sha256": "ab" * 32}

App = tuple[TestClient, Settings, FakeModelRegistry]


def versions() -> list[ModelVersion]:
    """Versions 1 to 4 READY with their mae, 5 still registering."""
    found = [
        ModelVersion(
            MODEL, n, datetime(2025, 3, int(n), tzinfo=UTC), tags=TAGS, metrics={"holdout_mae": mae}
        )
        for n, mae in MAE.items()
    ]
    return [*found, ModelVersion(MODEL, "5", None, "PENDING_REGISTRATION", tags=TAGS)]


def seed_model_service(client: TestClient, settings: Settings, work: Path) -> None:
    """Put the test service on main with its catalog-info.yaml naming :data:`MODEL`."""
    seed_service(client, settings, work)
    catalog = (
        (work / CATALOG)
        .read_text()
        .replace(
            "  description:",
            f"  annotations:\n    portal.platform/models: {MODEL}\n  description:",
        )
    )
    push_to_main(settings, work, {CATALOG: catalog}, "Name the model")
    repo = runtime(client).context.gitops()
    repo.refresh()
    location = f"git+{repo.public_url}#{repo.main}:{CATALOG}"
    with Session(runtime(client).context.engine) as session:
        report = import_locations(session, [location], settings, git=GitOpsFileReader(repo))
        assert not report.problems


def portal_settings(base: Path, **overrides: Any) -> Settings:
    """Settings of a module's portal in ``base``, initialised: trusted headers, SQLite."""
    settings = Settings(
        **{
            "data_dir": base / "var",
            "catalog_paths": [str(REPO / "catalog")],
            "secret_key": "test-secret-key",
            "gitops_seed_dir": REPO / "gitops-repo",
            "templates_dir": REPO / "templates",
            "error_budget_dir": REPO / "sre" / "error-budgets",
            "run_worker": False,
            "auth_mode": AuthMode.TRUSTED_HEADER,
            **overrides,
        }
    )
    initialise(settings, gitops=True)
    return settings


def promote_app(base: Path) -> Iterator[App]:
    """Yield a client of an app with the service on main naming the model (trusted headers)."""
    settings = portal_settings(base)
    registry = FakeModelRegistry()
    registry.add(RegisteredModel(MODEL, None, None), versions())
    fastapi_app = create_app(settings)
    fastapi_app.dependency_overrides[app_model_registry] = lambda: registry
    with TestClient(fastapi_app) as client:
        seed_model_service(client, settings, base / "someone")
        runtime(client).context.check_tools = CheckTools(
            kubectl=require_tool("kubectl"), model_registry=registry
        )
        yield client, settings, registry


def promote(client: TestClient, who: dict[str, str], name: str = MODEL, **body: Any) -> Response:
    """Post a promotion to the JSON API."""
    return client.post(f"/api/models/{name}/promote", json=body, headers=who)


def merged_promotion(client: TestClient, who: dict[str, str], version: str, env: str) -> str:
    """Promote ``version`` to ``env``, run its checks and have Ada approve it; return its id."""
    response = promote(client, who, version=version, environment=env)
    assert response.status_code == 201, response.text
    change_id: str = response.json()["change"]["id"]
    run_pending(runtime(client).context)
    approved = client.post(f"/api/changes/{change_id}/approve", json={}, headers=ADA)
    assert approved.status_code == 200, approved.text
    return change_id


def main_pin(settings: Settings, environment: str) -> str | None:
    """Return the version main pins in ``environment``."""
    text = git(remote_of(settings), "show", f"main:{OVERLAY}/{environment}/model.yaml")
    document = yaml.safe_load(text)
    (env,) = document["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env["name"] == "MODEL_VERSION"
    return str(env["value"])


def checks_of(client: TestClient, change_id: str) -> dict[str, dict[str, Any]]:
    """Return a change's checks by name, as the JSON API reports them."""
    change = client.get(f"/api/changes/{change_id}", headers=ADA).json()
    return {check["name"]: check for check in change["checks"]}


def stored(client: TestClient, change_id: str) -> Change:
    """Return the stored change (detached from its session)."""
    with Session(runtime(client).context.engine) as session:
        change = session.get(Change, change_id)
        assert change is not None
        session.expunge(change)
        return change
