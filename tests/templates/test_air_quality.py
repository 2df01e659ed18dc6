"""What is specific to the air-quality-monitor template: its questions, the city and the
pollutants in the rendered settings, the recorded fixtures, the models' volume and token,
the freshness SLO, the per-environment replicas, the model registry's wiring (tracking URI,
egress, the pin file of each overlay, the catalog annotations), and the generated app in
Chromium. The service against a real MLflow server: test_air_quality_mlflow.py.

Everything every template provides (files, objects of every overlay, review checks, probes,
metrics, traces, the generated tests from the lock) is checked by test_contract.py."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from portal.integrations import copier as copier_integration
from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import PublishedTemplate, discover, publish
from portal.scaffold.registry.manifest import load_template
from tests.browser_server import chromium, isolated_page, require_chromium
from tests.templates.air_quality_app import open_meteo_stand_in, running_service
from tests.templates.rendering import (
    TEMPLATES_DIR,
    Rendered,
    built_overlays,
    by_kind,
    load,
    render_service,
)
from tests.templates.service_process import offline_env
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE = TEMPLATES_DIR / "air-quality-monitor"
RECORDED = "open_meteo_air_quality_lahore.json"
# SHA-256 of the upstream files (sources in the fixtures README): the rendered fixtures must
# stay byte-for-byte copies of the recorded responses, never hand-edited.
RECORDED_SHA256 = {
    RECORDED: "5e730c620105c8caf36acbf69372158876695e3c7e1d8ad2523b9b1524094dd0",
    "open_meteo_air_quality_lahore_7day_nulls.json": (
        "d64ec8d17fe0cac1ba434ab595d2aad610dbcd98dbc28aed4255f5e119cb4340"
    ),
    "air_brno_2026-10-01.json": "8e2f14b0cefef8f76c44a4d989a6cd0330e1abc04fb83ed7128bbdf016a61954",
    "air_new_york_2026-10-01.json": (
        "f4db9ff5ee6364c811cebedc7d5637434c7830f000addf34405e200e234975d6"
    ),
}
DEFAULTS: dict[str, object] = {"name": "munich-air", "owner": "platform-team"}
CUSTOM: dict[str, object] = {
    "name": "sao-paulo-air",
    "owner": "sre",
    "city": "São Paulo",
    "latitude": "-23.55",
    "longitude": "-46.63",
    "timezone": "America/Sao_Paulo",
    "pollutants": ["pm10", "pm2_5"],
    "refresh_minutes": "15",
    "retrain_hours": "12",
    "anomaly_contamination": "0.1",
    "environments": ["dev", "prod"],
    "replicas_dev": "1",
    "replicas_prod": "3",
    "replicas_max": "6",
}
# The part of the app that is this template's: its modules, templates and vendored assets.
APP_FILES = [
    *(f"app/{module}.py" for module in ("main", "settings", "openmeteo", "assessment")),
    *(f"app/{module}.py" for module in ("anomaly", "forecast", "model_store", "chart")),
    *(f"app/{module}.py" for module in ("telemetry", "metrics", "monitor", "timeline")),
    *(f"app/{module}.py" for module in ("pages", "api", "probes", "observe", "dependencies")),
    *(f"app/{module}.py" for module in ("snapshot", "model_record", "registry", "pinned")),
    "app/templates/index.html",
    *(f"app/static/{name}" for name in ("htmx.min.js", "htmx.LICENSE", "chart.js")),
    *(f"app/static/{name}" for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")),
    "tests/conftest.py",
    "tests/fixtures/README.md",
    f"tests/fixtures/{RECORDED}",
    "tests/fixtures/rate_limit_429.json",
    "tests/fixtures/error_400_latitude.json",
    "tests/fixtures/all_null_munich.json",
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    yield publish(load_template(TEMPLATE), tmp_path_factory.mktemp("data"))
    copier_integration.shutdown()


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    info = load_template(TEMPLATE)
    return render_service(info, published, CUSTOM, tmp_path_factory.mktemp("gitops"))


# --- the template and its questions ----------------------------------------------------------


def test_the_template_is_registered_with_its_questions() -> None:
    (info,) = [i for i in discover(TEMPLATES_DIR) if i.name == "air-quality-monitor"]
    assert info.title == "Air-quality monitor" and info.version == "0.5.0"
    questions = {q.name: q for q in info.questions}
    assert [q.name for q in info.questions][:3] == ["name", "owner", "system"]
    defaults = {name: questions[name].default for name in ("city", "latitude", "longitude")}
    assert defaults == {"city": "Munich", "latitude": 48.137, "longitude": 11.575}
    assert questions["timezone"].default == "Europe/Berlin"
    assert questions["pollutants"].multiselect
    assert questions["pollutants"].default == ["pm2_5", "pm10", "nitrogen_dioxide"]
    for name in ("refresh_minutes", "anomaly_contamination", "replicas_prod", "replicas_max"):
        assert name in questions


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"latitude": "91"}, "latitude", "between -90 and 90"),
        ({"longitude": "-181"}, "longitude", "between -180 and 180"),
        ({"timezone": "Berlin time"}, "timezone", "IANA time zone"),
        ({"city": "<script>"}, "city", "one line of plain text"),
        ({"pollutants": []}, "pollutants", "at least one pollutant"),
        ({"anomaly_contamination": "0.9"}, "anomaly_contamination", "between 0.001 and 0.5"),
        ({"refresh_minutes": "1"}, "refresh_minutes", "between 5 and 360"),
        ({"replicas_prod": "5", "replicas_max": "4"}, "replicas_max", "prod replicas (5)"),
        ({"image_tag": "latest"}, "image_tag", "not latest"),
    ],
)
def test_bad_answers_get_a_message_on_their_field(
    answers: dict[str, object], field: str, message: str
) -> None:
    _, errors = validate_answers(load_template(TEMPLATE).questions, {**DEFAULTS, **answers})
    assert message in errors[field]


# --- renders ---------------------------------------------------------------------------------


def test_default_render_has_the_app_and_the_recorded_fixtures(default_service: Rendered) -> None:
    dest, files = default_service.dest, default_service.result.files
    for name in APP_FILES:
        assert name in files, name
    settings = (dest / "app" / "settings.py").read_text()
    assert 'city: str = "Munich"' in settings and "latitude: float = 48.137" in settings
    assert 'pollutants: tuple[str, ...] = tuple(["pm2_5", "pm10", "nitrogen_dioxide"])' in settings
    assert "anomaly_contamination: float = 0.05" in settings
    fixtures = dest / "tests" / "fixtures"
    for name, digest in RECORDED_SHA256.items():
        assert hashlib.sha256((fixtures / name).read_bytes()).hexdigest() == digest, name
    readme = (fixtures / "README.md").read_text()
    assert "CC BY 4.0" in readme and "CAMS" in readme and "imtiazNDMA/EarlyWarningSystem" in readme


def test_the_generated_tests_never_skip(default_service: Rendered) -> None:
    # Every one of them runs offline against the recorded responses: a skip would hide a part.
    for path in sorted((default_service.dest / "tests").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\bskip(if)?\b|importorskip|\bxfail\b", text), path.name


def test_custom_answers_change_the_settings(custom_service: Rendered) -> None:
    # Read by the rendered service itself, as the image runs it (its runtime lock).
    python = lock_venv(custom_service.dest / RUNTIME_LOCK, TEMPLATE.name)
    script = "import dataclasses, json; from app.settings import Settings; "
    script += "print(json.dumps(dataclasses.asdict(Settings.from_env({})), default=str))"
    shown = subprocess.run(
        [str(python), "-c", script],
        cwd=custom_service.dest,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    settings = json.loads(shown.stdout)
    assert settings["city"] == "São Paulo" and settings["timezone"] == "America/Sao_Paulo"
    assert (settings["latitude"], settings["longitude"]) == (-23.55, -46.63)
    assert settings["pollutants"] == ["pm2_5", "pm10"]  # the choices' order, as Copier keeps it
    assert (settings["refresh_seconds"], settings["retrain_seconds"]) == (900, 43200)
    assert settings["anomaly_contamination"] == 0.1
    assert settings["service_name"] == "sao-paulo-air"
    readme = (custom_service.dest / "README.md").read_text()
    assert "Air quality in **São Paulo**" in readme and "pm2_5, pm10" in readme


def test_the_models_get_a_volume_and_training_an_optional_token(default_service: Rendered) -> None:
    deployment = load(default_service.dest / "deploy" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}  # training
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"/tmp", "/models"}
    env = {item["name"]: item for item in container["env"]}
    assert env["MODEL_DIR"]["value"] == "/models"
    assert env["TRAIN_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "value" not in env["TRAIN_TOKEN"]  # never an answer: no secret in the GitOps repo
    dockerfile = (default_service.dest / "Dockerfile").read_text()
    assert "MODEL_DIR=/models" in dockerfile and "chown 10001:10001 /models" in dockerfile


def test_slo_has_data_freshness_and_the_catalog_the_model_card(default_service: Rendered) -> None:
    slo = load(default_service.dest / "slo.yaml")
    by_name = {item["name"]: item for item in slo["slos"]}
    assert set(by_name) == {"requests-availability", "data-freshness"}
    freshness = by_name["data-freshness"]
    assert freshness["objective"] == 99.0
    assert 'fresh="false"' in freshness["sli"]["events"]["error_query"]
    assert all("{{.window}}" in q for q in freshness["sli"]["events"].values())
    entity = load(default_service.dest / "catalog-info.yaml")
    assert entity["metadata"]["annotations"]["portal.platform/model-card"] == "/api/model"


# The pin file of every overlay, as the portal's Models page reads and writes it.
PIN = """# The model version the {env} environment of {name} serves: a version of
# {name}-air-quality in the MLflow model registry. Changes are proposed from the
# portal's Models page and reviewed like any other; empty: the service serves the model
# it trains itself.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - name: MODEL_VERSION
              value: ""
"""


def test_the_registry_is_wired_and_each_overlay_has_an_empty_pin(custom_service: Rendered) -> None:
    dest, name = custom_service.dest, CUSTOM["name"]
    for environment in custom_service.environments:
        overlay = dest / "deploy" / "overlays" / environment
        pin = (overlay / "model.yaml").read_text(encoding="utf-8")
        assert pin == PIN.format(env=environment, name=name)
        patches = load(overlay / "kustomization.yaml")["patches"]
        assert patches[-1] == {"path": "model.yaml"}  # last: it wins over earlier patches
    assert not (dest / "deploy" / "overlays" / "staging").exists()
    deployment = load(dest / "deploy" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
    policy = load(dest / "deploy" / "base" / "networkpolicy.yaml")["spec"]
    assert "Egress" in policy["policyTypes"]
    to_mlflow = [
        rule
        for rule in policy["egress"]
        if {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mlflow"}}}
        in rule.get("to", [])
    ]
    assert [rule["ports"] for rule in to_mlflow] == [[{"port": 5000, "protocol": "TCP"}]]
    annotations = load(dest / "catalog-info.yaml")["metadata"]["annotations"]
    assert annotations["portal.platform/models"] == f"{name}-air-quality"
    assert annotations["portal.platform/model-metric"] == "holdout_relative_mae"
    assert annotations["portal.platform/model-metric-direction"] == "lower"
    assert annotations["portal.platform/model-tolerance"] == "0.02"
    # Every model version records the template version: the one the portal publishes.
    settings = (dest / "app" / "settings.py").read_text(encoding="utf-8")
    assert f'TEMPLATE_VERSION = "{custom_service.template.version}"' in settings
    dockerfile = (dest / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG GIT_COMMIT=unknown" in dockerfile and "GIT_COMMIT=${GIT_COMMIT}" in dockerfile


@pytest.mark.integration
def test_each_overlay_names_its_environment_and_its_own_replicas(custom_service: Rendered) -> None:
    overlays = built_overlays(custom_service.dest)
    assert sorted(overlays) == ["dev", "prod"]
    for environment, objects in overlays.items():
        kinds = by_kind(objects)
        container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["DEPLOY_ENVIRONMENT"] == environment
        assert env["MODEL_VERSION"] == ""  # the pin patch applies: unpinned until promoted
        hpa = kinds["HorizontalPodAutoscaler"]["spec"]
        minimum = {"dev": 1, "prod": 3}[environment]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (minimum, 6)


# --- the generated app in a browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.browser
def test_the_generated_app_in_chromium(
    default_service: Rendered, browser: Browser, tmp_path: Path
) -> None:
    require_chromium()
    dest = default_service.dest
    recorded = (dest / "tests" / "fixtures" / RECORDED).read_bytes()
    python = lock_venv(dest / RUNTIME_LOCK, TEMPLATE.name)  # what the image installs
    with (
        open_meteo_stand_in(recorded) as open_meteo,
        running_service(dest, open_meteo, tmp_path / "models", python) as url,
        isolated_page(browser, url) as page,
    ):
        page.goto("/")
        expect(page.get_by_role("heading", level=1)).to_have_text("Air quality in Munich")
        canvas = page.locator("#chart-pm2_5 canvas").first
        expect(canvas).to_be_visible()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
        expect(page.locator("#chart-pm2_5 .legend-who")).to_contain_text("WHO 24-hour guideline")
        expect(page.locator("#attribution")).to_contain_text("CC BY 4.0")

        result = page.locator("#check-result")
        page.fill("#field-pm10", "20")
        page.fill("#field-nitrogen_dioxide", "10")
        page.fill("#field-pm2_5", "300")
        page.get_by_role("button", name="Check").click()
        expect(result).to_contain_text("High pollution anomaly")
        expect(result).to_contain_text("PM2.5 at 300 µg/m³")

        page.fill("#field-pm2_5", "5")
        page.fill("#field-pm10", "10")
        page.get_by_role("button", name="Check").click()
        expect(result).to_contain_text("Clean air")

        page.fill("#field-pm2_5", "-4")
        page.get_by_role("button", name="Check").click()
        expect(page.locator("#error-pm2_5")).to_have_text("PM2.5 cannot be negative")
