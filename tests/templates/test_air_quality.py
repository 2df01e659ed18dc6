"""The air-quality-monitor template end to end: questions, renders through the portal's own
publish/render path, kustomize, the review checks, the generated service's own tests and
the generated app in Chromium."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, expect

from portal.integrations import copier as copier_integration
from portal.integrations.copier import RenderResult, render
from portal.integrations.promtool import PromtoolCli, find_promtool
from portal.review.checks import CheckStatus, CheckTools, run_manifest_checks
from portal.review.cost import PriceSheet
from portal.scaffold.answers import validate_answers
from portal.scaffold.templates import PublishedTemplate, discover, load_template, publish
from tests.browser_server import chromium, isolated_page, require_chromium
from tests.conftest import require_tool
from tests.templates.air_quality_app import open_meteo_stand_in, running_service
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv, run_generated_tests

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "templates" / "air-quality-monitor"
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
GROUPS = frozenset({"platform-team", "sre"})
DEFAULTS: dict[str, object] = {"name": "munich-air", "owner": "platform-team"}
CUSTOM: dict[str, object] = {
    "name": "sao-paulo-air",
    "owner": "sre",
    "system": "observability",
    "lifecycle": "production",
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
    "image_tag": "2.0.1",
    "port": "9000",
}
REQUIRED = [
    ".copier-answers.yml",
    ".dockerignore",
    ".github/workflows/ci.yaml",
    "Dockerfile",
    "README.md",
    "catalog-info.yaml",
    "pyproject.toml",
    "slo.yaml",
    *(f"app/{module}.py" for module in ("main", "settings", "openmeteo", "assessment")),
    *(f"app/{module}.py" for module in ("anomaly", "forecast", "model_store", "chart")),
    *(f"app/{module}.py" for module in ("telemetry", "metrics", "monitor", "timeline")),
    "app/templates/index.html",
    *(f"app/static/{name}" for name in ("htmx.min.js", "htmx.LICENSE", "chart.js")),
    *(f"app/static/{name}" for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")),
    "tests/conftest.py",
    "tests/fixtures/README.md",
    f"tests/fixtures/{RECORDED}",
    "tests/fixtures/rate_limit_429.json",
    "tests/fixtures/error_400_latitude.json",
    "tests/fixtures/all_null_munich.json",
    *(f"deploy/base/{kind}.yaml" for kind in ("kustomization", "namespace", "deployment")),
    *(f"deploy/base/{kind}.yaml" for kind in ("service", "hpa", "pdb", "servicemonitor")),
]

Service = tuple[Path, RenderResult, dict[str, Any]]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    yield publish(load_template(TEMPLATE), tmp_path_factory.mktemp("data"))
    copier_integration.shutdown()


def render_service(published: PublishedTemplate, raw: dict[str, object], root: Path) -> Service:
    answers, errors = validate_answers(load_template(TEMPLATE).questions, raw)
    assert errors == {}
    dest = root / "services" / str(answers["name"])
    return dest, render(published.src, published.vcs_ref, answers, dest), answers


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Service:
    return render_service(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Service:
    return render_service(published, CUSTOM, tmp_path_factory.mktemp("gitops"))


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def owner_exists(owner: str) -> bool:
    return owner in GROUPS


def kubectl() -> Path:
    return require_tool("kubectl")


# --- the template and its questions ----------------------------------------------------------


def test_the_template_is_registered_with_its_questions() -> None:
    (info,) = [i for i in discover(REPO / "templates") if i.name == "air-quality-monitor"]
    assert info.title == "Air-quality monitor" and info.version == "0.2.0"
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


def test_default_render_has_every_part(default_service: Service) -> None:
    dest, result, _ = default_service
    for name in REQUIRED:
        assert name in result.files, name
    assert result.template_commit == "v0.2.0" and result.warnings == ()
    overlays = sorted(p.name for p in (dest / "deploy" / "overlays").iterdir())
    assert overlays == ["dev", "prod", "staging"]
    settings = (dest / "app" / "settings.py").read_text()
    assert 'city: str = "Munich"' in settings and "latitude: float = 48.137" in settings
    assert 'pollutants: tuple[str, ...] = tuple(["pm2_5", "pm10", "nitrogen_dioxide"])' in settings
    assert "anomaly_contamination: float = 0.05" in settings
    fixtures = dest / "tests" / "fixtures"
    for name, digest in RECORDED_SHA256.items():
        assert hashlib.sha256((fixtures / name).read_bytes()).hexdigest() == digest, name
    readme = (fixtures / "README.md").read_text()
    assert "CC BY 4.0" in readme and "CAMS" in readme and "imtiazNDMA/EarlyWarningSystem" in readme


def test_custom_answers_change_the_render(custom_service: Service) -> None:
    dest, _, _ = custom_service
    settings = (dest / "app" / "settings.py").read_text()
    assert 'city: str = "São Paulo"' in settings
    assert 'timezone: str = "America/Sao_Paulo"' in settings
    assert 'tuple(["pm2_5", "pm10"])' in settings  # the choices' order, as Copier keeps it
    assert "refresh_seconds: float = 900" in settings
    assert "anomaly_contamination: float = 0.1" in settings
    assert sorted(p.name for p in (dest / "deploy" / "overlays").iterdir()) == ["dev", "prod"]
    entity = load(dest / "catalog-info.yaml")
    assert entity["spec"] == {
        "type": "service",
        "lifecycle": "production",
        "owner": "sre",
        "system": "observability",
    }
    deployment = load(dest / "deploy" / "base" / "deployment.yaml")
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 9000
    )
    prod = load(dest / "deploy" / "overlays" / "prod" / "kustomization.yaml")
    assert prod["images"] == [
        {"name": "registry.example.com/services/sao-paulo-air", "newTag": "2.0.1"}
    ]


def test_deployment_is_hardened_and_rolls_without_dropping_replicas(
    default_service: Service,
) -> None:
    base = default_service[0] / "deploy" / "base"
    deployment = load(base / "deployment.yaml")
    spec = deployment["spec"]
    assert "replicas" not in spec and "replicas:" not in (base / "deployment.yaml").read_text()
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == [
        "ALL"
    ]
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"/tmp", "/models"}
    env = {item["name"]: item for item in container["env"]}
    assert env["MODEL_DIR"]["value"] == "/models"
    assert env["TRAIN_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "value" not in env["TRAIN_TOKEN"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].startswith("http://")
    dockerfile = (default_service[0] / "Dockerfile").read_text()
    assert "USER 10001:10001" in dockerfile and "python:3.12-slim" in dockerfile


def test_slo_has_availability_and_data_freshness(default_service: Service) -> None:
    slo = load(default_service[0] / "slo.yaml")
    assert slo["version"] == "prometheus/v1" and slo["service"] == "munich-air"
    by_name = {item["name"]: item for item in slo["slos"]}
    assert set(by_name) == {"requests-availability", "data-freshness"}
    availability = by_name["requests-availability"]["sli"]["events"]
    assert "http_requests_total" in availability["total_query"]
    freshness = by_name["data-freshness"]
    assert freshness["objective"] == 99.0
    assert 'fresh="false"' in freshness["sli"]["events"]["error_query"]
    assert all("{{.window}}" in q for q in freshness["sli"]["events"].values())
    entity = load(default_service[0] / "catalog-info.yaml")
    annotations = entity["metadata"]["annotations"]
    assert annotations["portal.platform/model-card"] == "/api/model"
    assert annotations["backstage.io/source-template"] == "template:default/air-quality-monitor"


# --- kustomize and the review checks ---------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("service", ["default_service", "custom_service"])
def test_every_overlay_builds_with_kustomize(service: str, request: pytest.FixtureRequest) -> None:
    dest, _, answers = request.getfixturevalue(service)
    for overlay in sorted((dest / "deploy" / "overlays").iterdir()):
        built = subprocess.run(
            [str(kubectl()), "kustomize", str(overlay)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert built.returncode == 0, built.stderr
        objects = {doc["kind"]: doc for doc in yaml.safe_load_all(built.stdout) if doc}
        assert set(objects) == {
            "Namespace",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "ServiceMonitor",
        }
        deployment = objects["Deployment"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"].endswith(f":{answers['image_tag']}")
        assert "replicas" not in deployment["spec"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["DEPLOY_ENVIRONMENT"] == overlay.name
        hpa = objects["HorizontalPodAutoscaler"]["spec"]
        minimum = answers[f"replicas_{overlay.name}"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (minimum, answers["replicas_max"])
        assert ".copier-answers.yml" not in built.stdout


@pytest.mark.integration
@pytest.mark.parametrize("service", ["default_service", "custom_service"])
def test_the_review_checks_pass(service: str, request: pytest.FixtureRequest) -> None:
    dest, _, answers = request.getfixturevalue(service)
    promtool = find_promtool()  # with it, the SLO's generated rules are checked and unit-tested
    tools = CheckTools(kubectl=kubectl(), promtool=PromtoolCli(promtool) if promtool else None)
    results = run_manifest_checks(dest, answers["environments"], owner_exists, PriceSheet(), tools)
    environments = answers["environments"]
    names = [result.name for result in results]
    assert "slo rules" in names
    for environment in environments:
        for check in ("kustomize", "schema", "policy", "cost"):
            assert f"{check} ({environment})" in names
    problems = {
        result.name: (result.summary, [f.message for f in result.findings])
        for result in results
        if result.status != CheckStatus.PASSED
    }
    assert problems == {}


# --- the generated service's own tests ------------------------------------------------------


@pytest.mark.parametrize("service", ["default_service", "custom_service"])
def test_the_rendered_service_passes_its_own_tests(
    service: str, request: pytest.FixtureRequest
) -> None:
    dest, _, _ = request.getfixturevalue(service)
    result = run_generated_tests(dest, TEMPLATE.name)  # a fresh venv from the service's lock
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
    assert "skipped" not in result.stdout


# --- the generated app in a browser ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.browser
def test_the_generated_app_in_chromium(
    default_service: Service, browser: Browser, tmp_path: Path
) -> None:
    require_chromium()
    dest = default_service[0]
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
