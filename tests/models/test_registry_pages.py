"""The Models pages and GET /api/models over a FakeModelRegistry, a real catalog and GitOps main.

The service's pins are real files on a real GitOps main (pushed as a teammate would),
the owners come from catalog components imported into the database; only MLflow is the
fake, which counts the calls each page makes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.config import Settings
from portal.integrations.mlflow import FakeModelRegistry, ModelVersion, RegisteredModel
from portal.models.pins import PIN_FILE, pin_text
from portal.models.registry_runtime import RegistryRuntime
from tests.conftest import changes_runtime
from tests.databases import SQLITE_ONLY
from tests.proposals.seed import push_to_main

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

SERVICE = "munich-air"
MODEL = f"{SERVICE}-air-quality"
UNREGISTERED = f"{SERVICE}-detector"
STRAY = "stray-model"
OVERLAYS = f"services/{SERVICE}/deploy/overlays"
HTML = {"Accept": "text/html"}
DOWN = "MLflow at http://mlflow.example.invalid is not reachable (connection refused)"

CATALOG = f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {SERVICE}
  annotations:
    portal.platform/models: "{MODEL}, {UNREGISTERED}"
    portal.platform/model-metric: holdout_mae
spec: {{type: service, lifecycle: production, owner: platform-team}}
"""


def version(number: int, mae: float, **tags: str) -> ModelVersion:
    return ModelVersion(
        MODEL,
        str(number),
        datetime(2026, 3, number, 12, 0, tzinfo=UTC),
        run_id=f"{number:032x}",
        tags={"sha256": f"{number:02d}" * 32, "git_commit": f"{number}abcdef0123456789", **tags},
        metrics={"holdout_mae": mae, "holdout_rmse": mae * 1.5},
    )


def fake_registry() -> FakeModelRegistry:
    fake = FakeModelRegistry(url="http://mlflow.example.invalid")
    fake.add(
        RegisteredModel(MODEL, None, None, latest_version="3"),
        [
            version(1, 3.0),
            version(2, 2.5, training_window_start="2026-02-01", training_window_end="2026-02-28"),
            version(3, 2.75),
        ],
    )
    fake.add(
        RegisteredModel(STRAY, None, None, aliases={"champion": "1"}, latest_version="1"),
        [ModelVersion(STRAY, "1", None, aliases=("champion",))],
    )
    return fake


def use_registry(client: TestClient, registry: FakeModelRegistry | None) -> RegistryRuntime:
    """Give the app ``registry`` (None: not configured), as create_app would have."""
    app = client.app
    runtime = RegistryRuntime(
        registry,
        app.state.engine,  # type: ignore[attr-defined]
        changes_runtime(client).request_gitops,
        app.state.settings.environments,  # type: ignore[attr-defined]
    )
    app.state.model_registry = runtime  # type: ignore[attr-defined]
    app.state.models.registry = registry  # type: ignore[attr-defined]
    return runtime


@pytest.fixture
def seeded(portal: TestClient, settings: Settings, tmp_path: Path) -> TestClient:
    """munich-air on main (dev unpinned, staging 3, prod 2) and in the catalog."""
    kustomization = "resources:\n  - ../../base\npatches:\n  - path: model.yaml\n"
    files = {
        f"services/{SERVICE}/deploy/base/kustomization.yaml": "resources: []\n",
        f"{OVERLAYS}/dev/kustomization.yaml": "resources:\n  - ../../base\n",
        f"{OVERLAYS}/staging/kustomization.yaml": kustomization,
        f"{OVERLAYS}/staging/{PIN_FILE}": pin_text(SERVICE, "staging", MODEL, "3"),
        f"{OVERLAYS}/prod/kustomization.yaml": kustomization,
        f"{OVERLAYS}/prod/{PIN_FILE}": pin_text(SERVICE, "prod", MODEL, "2"),
    }
    push_to_main(settings, tmp_path / "work", files, "munich-air with pins")
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    with Session(portal.app.state.engine) as session:  # type: ignore[attr-defined]
        report = import_locations(session, [str(catalog)], settings)
    assert not report.problems, report.problems
    return portal


def row_of(html: str, name: str) -> str:
    start = html.index(f'<tr data-model="{name}">')
    return html[start : html.index("</tr>", start)]


def test_the_page_groups_models_by_component_with_champion_challenger_and_serving(
    seeded: TestClient,
) -> None:
    use_registry(seeded, fake_registry())

    html = seeded.get("/models").text

    assert 'data-registry-state="ready"' in html and "http://mlflow.example.invalid" in html
    ours = html.index(f'data-component="{SERVICE}"')
    unowned = html.index('data-component=""')
    assert ours < html.index(row_of(html, MODEL)) < unowned < html.index(row_of(html, STRAY))
    assert 'data-team="platform-team"' in html[ours:unowned]
    row = row_of(html, MODEL)
    assert f'<a href="/models/{MODEL}">{MODEL}</a>' in row
    assert 'data-champion="2"' in row and 'data-challenger="3"' in row  # prod 2, newest 3
    assert re.search(r'data-serving="dev">\s*<span class="muted"[^>]*>unpinned', row)
    assert 'data-serving="staging"><strong data-version="3">3</strong>' in row
    assert 'data-serving="prod"><strong data-version="2">2</strong>' in row
    assert 'data-versions="3"' in row
    assert "not registered" in row_of(html, UNREGISTERED)  # the catalog names it, MLflow not
    assert 'data-champion="1"' in row_of(html, STRAY)  # its alias
    assert 'data-serving="prod"><span class="muted" title="No catalog component' in row_of(
        html, STRAY
    )  # no owner: no service's pin to read
    assert html.index('id="model-registry"') < html.index('id="prompts"')


def test_the_api_gives_the_same_as_json(seeded: TestClient) -> None:
    use_registry(seeded, fake_registry())

    body = seeded.get("/api/models").json()

    assert body["registry"] == {
        "state": "ready",
        "url": "http://mlflow.example.invalid",
        "error": None,
    }
    assert re.fullmatch(r"[0-9a-f]{40}", body["commit"])
    assert body["environments"] == ["dev", "staging", "prod"]
    [ours, unowned] = body["groups"]
    assert (ours["component"], ours["team"], unowned["component"]) == (
        SERVICE,
        "platform-team",
        None,
    )
    model = ours["models"][0]
    assert model["name"] == MODEL and model["url"] == f"/models/{MODEL}"
    assert model["component_url"] == f"/catalog/component/default/{SERVICE}"
    assert model["champion"] == {"version": "2", "source": "serving"}
    assert model["challenger"] == {"version": "3", "source": "newest"}
    assert [(s["environment"], s["version"]) for s in model["serving"]] == [
        ("dev", None),
        ("staging", "3"),
        ("prod", "2"),
    ]
    assert model["serving"][2]["path"] == f"{OVERLAYS}/prod/{PIN_FILE}"
    assert ours["models"][1]["name"] == UNREGISTERED and not ours["models"][1]["registered"]
    assert unowned["models"][0]["champion"] == {"version": "1", "source": "alias"}


def test_the_overview_makes_one_registry_call_per_refresh_whatever_the_model_count(
    seeded: TestClient,
) -> None:
    fake = fake_registry()
    for number in range(40):
        fake.add(RegisteredModel(f"bulk-{number}", None, None, latest_version="50"))
    runtime = use_registry(seeded, fake)

    for _ in range(3):
        assert seeded.get("/models").status_code == 200
    seeded.get("/api/models")
    assert fake.calls == 1  # kept for a few seconds: one models() call, never versions()

    runtime.forget()
    seeded.get("/models")
    assert fake.calls == 2


def test_the_detail_shows_versions_metrics_charts_and_links_back(seeded: TestClient) -> None:
    fake = fake_registry()
    use_registry(seeded, fake)

    response = seeded.get(f"/models/{MODEL}")

    assert response.status_code == 200
    html = response.text
    assert f'<a href="/catalog/component/default/{SERVICE}">{SERVICE}</a>' in html
    rows = re.findall(r'<tr data-version="(\d+)">', html)
    assert rows == ["3", "2", "1"]
    second = html[html.index('<tr data-version="2">') :]
    second = second[: second.index("</tr>")]
    assert "2026-02-01 \u2013 2026-02-28" in second
    assert '<code title="sha256 ' + "02" * 32 + '">' + "02" * 6 + "</code>" in second
    assert '<code title="2abcdef0123456789">2abcdef01234</code>' in second
    assert 'data-serving-in="prod"' in second
    assert '<span title="2.5">2.5</span>' in second
    heads = re.findall(r'<th scope="col" data-metric="([^"]+)">', html)
    assert heads == ["holdout_mae", "holdout_rmse"]  # the component's metric first
    charts = json.loads(
        re.search(r'id="model-chart-data">(.*?)</script>', html, re.S).group(1)  # type: ignore[union-attr]
    )["charts"]
    assert charts[0] == {
        "id": "metric-0",
        "metric": "holdout_mae",
        "x": [1, 2, 3],
        "y": [3.0, 2.5, 2.75],
    }
    assert 'data-model-chart="metric-0"' in html and "/static/models-charts.js" in html
    assert 'id="promotion"' in html  # the promotion partial is included
    assert fake.calls == 2  # the overview's models() and this model's versions()


def test_the_detail_api(seeded: TestClient) -> None:
    use_registry(seeded, fake_registry())

    body = seeded.get(f"/api/models/{MODEL}").json()

    assert body["model"]["name"] == MODEL and body["model"]["version_count"] == 3
    assert body["metrics"] == ["holdout_mae", "holdout_rmse"]
    newest = body["versions"][0]
    assert newest["version"] == "3" and newest["serving_in"] == ["staging"]
    assert newest["metrics"] == {"holdout_mae": 2.75, "holdout_rmse": 4.125}
    assert newest["created_at"] == "2026-03-03T12:00:00Z"
    assert newest["sha256"] == "03" * 32 and newest["run_id"] == f"{3:032x}"
    assert body["series"][1] == {
        "metric": "holdout_rmse",
        "versions": [1, 2, 3],
        "values": [4.5, 3.75, 4.125],
    }


def test_an_unknown_model_is_a_404_naming_it(seeded: TestClient) -> None:
    use_registry(seeded, fake_registry())

    page = seeded.get("/models/no-such-model", headers=HTML)
    api = seeded.get("/api/models/no-such-model")

    assert page.status_code == 404 and "There is no model no-such-model" in page.text
    assert "<h1>Not found</h1>" in page.text
    assert api.status_code == 404 and "no-such-model" in api.json()["detail"]


def test_a_catalog_model_without_versions_has_a_page(seeded: TestClient) -> None:
    use_registry(seeded, fake_registry())

    html = seeded.get(f"/models/{UNREGISTERED}").text

    assert 'id="no-versions"' in html and f"/catalog/component/default/{SERVICE}" in html


def test_an_unreachable_registry_is_said_on_the_pages_and_a_503_in_the_api(
    seeded: TestClient,
) -> None:
    fake = fake_registry()
    fake.unavailable = DOWN
    use_registry(seeded, fake)

    page = seeded.get("/models")
    detail = seeded.get(f"/models/{MODEL}")
    api = seeded.get("/api/models")
    api_detail = seeded.get(f"/api/models/{MODEL}")

    assert page.status_code == 200 and 'id="registry-unreachable"' in page.text
    assert "<code>http://mlflow.example.invalid</code>" in page.text and DOWN in page.text
    assert 'data-component="' not in page.text  # no model is listed from nothing
    assert detail.status_code == 200 and 'id="registry-unreachable"' in detail.text
    # What main serves is still known without MLflow.
    assert 'data-serving="prod"><strong data-version="2">2</strong>' in detail.text
    assert api.status_code == 503 and api.json() == {"detail": DOWN}
    assert api_detail.status_code == 503 and api_detail.json() == {"detail": DOWN}
    # A name the catalog does not know may still be in MLflow: no 404 while it is down.
    elsewhere = seeded.get("/models/maybe-registered", headers=HTML)
    assert elsewhere.status_code == 200 and 'id="registry-unreachable"' in elsewhere.text
    assert seeded.get("/api/models/maybe-registered").status_code == 503


def test_without_a_registry_the_pages_say_how_to_configure_one(seeded: TestClient) -> None:
    use_registry(seeded, None)

    page = seeded.get("/models").text
    api = seeded.get("/api/models").json()
    detail = seeded.get(f"/models/{MODEL}")
    unknown = seeded.get("/models/no-such-model", headers=HTML)

    assert 'id="registry-not-configured"' in page and "PORTAL_MLFLOW_URL" in page
    assert api["registry"] == {"state": "not_configured", "url": None, "error": None}
    assert api["groups"] == []
    assert detail.status_code == 200 and 'id="registry-not-configured"' in detail.text
    assert unknown.status_code == 404


def test_the_component_page_links_to_its_models(seeded: TestClient) -> None:
    html = seeded.get(f"/catalog/component/default/{SERVICE}").text

    models = html[html.index('id="component-models"') :]
    assert f'<a href="/models/{MODEL}">{MODEL}</a>' in models
    assert f'<a href="/models/{UNREGISTERED}">{UNREGISTERED}</a>' in models
