"""templates/CONTRACT.md, checked for every template the portal discovers in templates/.

Each template is rendered twice through the portal's own path: with its defaults (only the
questions without a default are answered, with their placeholder) and with non-default
answers to the contract's questions (fewer environments, other replicas, resources, port,
image, owner, system). A new template folder is covered without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from portal.config import DEFAULT_TEMPLATE_BASE_URL
from portal.integrations import copier as copier_integration
from portal.scaffold.questions import Field, choices_for
from portal.scaffold.registry.bundled import discover, publish
from portal.scaffold.registry.manifest import TemplateInfo
from tests.templates.otlp_receiver import SERVER_KIND, otlp_receiver
from tests.templates.rendering import (
    REPO,
    TEMPLATES_DIR,
    Rendered,
    built_overlays,
    by_kind,
    load,
    render_service,
    review_problems,
)
from tests.templates.service_process import offline_env, serving_app
from tests.templates.service_venv import RUNTIME_LOCK, TEST_LOCK, lock_venv, run_generated_tests

TEMPLATES = {info.name: info for info in discover(TEMPLATES_DIR)}
ANSWER_SETS = ("defaults", "custom")
PLATFORM_ENVIRONMENTS = sorted(path.name for path in (REPO / "gitops-repo" / "clusters").iterdir())
COLLECTOR = load(
    REPO / "gitops-repo" / "infrastructure" / "base" / "monitoring" / "opentelemetry-collector.yaml"
)["metadata"]
OTLP_ENDPOINT = f"http://{COLLECTOR['name']}.{COLLECTOR['namespace']}.svc:4318"
# Contract question -> the form widget it must be (Field.kind).
QUESTIONS = {
    **dict.fromkeys(("name", "owner", "system", "description"), "str"),
    **dict.fromkeys(("cpu_request", "cpu_limit", "memory_request", "memory_limit"), "str"),
    **dict.fromkeys(("image_repository", "image_tag"), "str"),
    **dict.fromkeys(("replicas_max", "port"), "int"),
    "lifecycle": "choice",
    "environments": "multiselect",
}
FILES = (
    *(".copier-answers.yml", "README.md", "catalog-info.yaml", "slo.yaml", "pyproject.toml"),
    *("Dockerfile", ".dockerignore", ".github/workflows/ci.yaml", RUNTIME_LOCK, TEST_LOCK),
    *("app/__init__.py", "app/main.py"),
    *(f"deploy/base/{part}.yaml" for part in ("kustomization", "namespace", "deployment")),
    *(f"deploy/base/{part}.yaml" for part in ("service", "hpa", "pdb", "networkpolicy")),
    "deploy/base/servicemonitor.yaml",
)
KINDS = {"Namespace", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}
KINDS |= {"NetworkPolicy", "ServiceMonitor"}
PROBES = ("/healthz", "/readyz", "/metrics")
CALLER_TRACE, CALLER_SPAN = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
CUSTOM_REPLICAS = {"dev": "1", "staging": "2", "prod": "3"}


def choices(field: Field) -> list[str]:
    """The choices offered without the portal's environments (a plain ``copier copy``)."""
    return [str(choice.value) for choice in choices_for(field, {})]


def default_answers(info: TemplateInfo) -> dict[str, object]:
    """Answer only what has no default, with the placeholder the form shows as the example."""
    return {q.name: q.placeholder for q in info.questions if q.required}


def custom_answers(info: TemplateInfo) -> dict[str, object]:
    """Non-default answers to every contract question; the others keep their defaults."""
    questions = {q.name: q for q in info.questions}
    environments = choices(questions["environments"])[1:]
    answers = default_answers(info) | {
        "name": "contract-probe",
        "owner": "sre",
        "system": "observability",
        "lifecycle": "production",
        "description": 'Renders the contract: "quoted", ünïcode',
        "environments": environments,
        "replicas_max": "6",
        "cpu_request": "250m",
        "cpu_limit": "750m",
        "memory_request": "192Mi",
        "memory_limit": "320Mi",
        "port": "9000",
        "image_repository": "registry.example.com/contract/probe",
        "image_tag": "3.1.4",
    }
    if "replicas_min" in questions:
        answers["replicas_min"] = CUSTOM_REPLICAS["prod"]
    for environment in environments:
        if f"replicas_{environment}" in questions:
            answers[f"replicas_{environment}"] = CUSTOM_REPLICAS[environment]
    return answers


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("data")
    copier_integration.shutdown()


@pytest.fixture(
    scope="module",
    params=[(name, answers) for name in TEMPLATES for answers in ANSWER_SETS],
    ids=lambda param: "-".join(param),
)
def rendered(
    request: pytest.FixtureRequest, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    name, answer_set = request.param
    info = TEMPLATES[name]
    published = publish(info, data_dir)  # idempotent: the second answer set reuses the tag
    raw = default_answers(info) if answer_set == "defaults" else custom_answers(info)
    return render_service(info, published, raw, tmp_path_factory.mktemp(f"{name}-{answer_set}"))


# --- the template folder and its questions --------------------------------------------------


@pytest.mark.parametrize("info", TEMPLATES.values(), ids=list(TEMPLATES))
def test_the_template_folder_and_its_contract_questions(info: TemplateInfo) -> None:
    assert info.path is not None
    config = load(info.path / "copier.yml")
    assert config["_subdirectory"] == "template"
    assert config["_answers_file"] == ".copier-answers.yml"
    assert (info.path / "README.md").is_file()
    for lock in (RUNTIME_LOCK, TEST_LOCK):  # copied verbatim, never rendered
        assert (info.path / "template" / lock).is_file(), lock
    questions = {q.name: q for q in info.questions}
    kinds = {name: questions[name].kind for name in QUESTIONS if name in questions}
    assert kinds == QUESTIONS
    environments = choices(questions["environments"])
    assert environments and set(environments) <= set(PLATFORM_ENVIRONMENTS)
    per_environment = {f"replicas_{environment}" for environment in environments}
    assert "replicas_min" in questions or per_environment <= set(questions)
    for question in info.questions:
        assert question.help, f"{question.name} has no help"
        assert not question.required or question.placeholder, f"{question.name}: no example"
        if question.kind in ("str", "int", "float"):  # choices constrain themselves
            assert question.validator, f"{question.name} has no validator"


# --- what is rendered -----------------------------------------------------------------------


def test_every_contract_file_is_rendered(rendered: Rendered) -> None:
    files = set(rendered.result.files)
    assert set(FILES) <= files, sorted(set(FILES) - files)
    assert any(re.fullmatch(r"tests/test_\w+\.py", name) for name in files)
    overlays = {name.split("/")[2] for name in files if name.startswith("deploy/overlays/")}
    assert overlays == set(rendered.environments)
    for environment in rendered.environments:
        assert f"deploy/overlays/{environment}/kustomization.yaml" in files
    assert rendered.result.warnings == ()
    recorded = load(rendered.dest / ".copier-answers.yml")
    assert rendered.result.template_commit == recorded["_commit"] == f"v{rendered.template.version}"
    # Its URL, not the portal's disk: `copier update` works from any clone.
    assert recorded["_src_path"] == f"{DEFAULT_TEMPLATE_BASE_URL}/{rendered.template.name}.git"
    dockerfile = (rendered.dest / "Dockerfile").read_text(encoding="utf-8")
    assert '"app.main:app"' in dockerfile and "USER 10001:10001" in dockerfile


def test_the_catalog_entity_and_the_slo_describe_the_service(rendered: Rendered) -> None:
    answers, name = rendered.answers, rendered.answers["name"]
    entity = load(rendered.dest / "catalog-info.yaml")
    assert (entity["apiVersion"], entity["kind"]) == ("backstage.io/v1alpha1", "Component")
    assert entity["metadata"]["name"] == name
    assert entity["metadata"]["description"] == answers["description"]
    annotations = entity["metadata"]["annotations"]
    assert (
        annotations["backstage.io/source-template"] == f"template:default/{rendered.template.name}"
    )
    assert annotations["backstage.io/kubernetes-id"] == name
    assert annotations["backstage.io/kubernetes-namespace"] == name
    assert annotations["portal.platform/slo-file"] == "slo.yaml"
    assert annotations["portal.platform/environments"] == ",".join(rendered.environments)
    spec = {"type": "service", "lifecycle": answers["lifecycle"], "owner": answers["owner"]}
    assert entity["spec"] == spec | ({"system": answers["system"]} if answers["system"] else {})
    slo = load(rendered.dest / "slo.yaml")
    assert (slo["version"], slo["service"]) == ("prometheus/v1", name)
    assert slo["labels"]["owner"] == answers["owner"]
    assert any(
        "http_requests_total" in objective["sli"]["events"]["total_query"]
        for objective in slo["slos"]
    )


# --- the Kubernetes objects of every overlay ------------------------------------------------


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def replica_bounds(answers: dict[str, Any], environment: str) -> tuple[int | None, int]:
    """The autoscaler's contract minimum in ``environment`` (None: the template's choice)."""
    minimum = answers.get(f"replicas_{environment}")
    if minimum is None and environment == "prod":
        minimum = answers.get("replicas_min")
    return minimum, answers["replicas_max"]


def check_deployment(deployment: dict[str, Any], answers: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert "replicas" not in spec  # the autoscaler owns it; Flux would reset it
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["image"] == f"{answers['image_repository']}:{answers['image_tag']}"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports["http"] == answers["port"]
    resources = container["resources"]
    assert resources["requests"] == {
        "cpu": answers["cpu_request"],
        "memory": answers["memory_request"],
    }
    assert resources["limits"] == {"cpu": answers["cpu_limit"], "memory": answers["memory_limit"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == OTLP_ENDPOINT  # the platform's collector
    assert env["OTEL_SERVICE_NAME"] == answers["name"]


@pytest.mark.integration
def test_every_overlay_builds_with_every_contract_object(rendered: Rendered) -> None:
    answers, name = rendered.answers, rendered.answers["name"]
    overlays = built_overlays(rendered.dest)
    assert sorted(overlays) == sorted(rendered.environments)
    for environment, objects in overlays.items():
        kinds = by_kind(objects)
        assert set(kinds) >= KINDS, (environment, sorted(KINDS - set(kinds)))
        assert kinds["Namespace"]["metadata"]["name"] == name
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/environment") == environment, obj["kind"]
            if obj["kind"] != "Namespace":
                assert obj["metadata"]["namespace"] == name, obj["kind"]
        deployment = kinds["Deployment"]
        check_deployment(deployment, answers)
        pods = deployment["spec"]["template"]["metadata"]["labels"]
        service = kinds["Service"]
        assert selects(service["spec"]["selector"], pods)
        assert {port["targetPort"] for port in service["spec"]["ports"]} == {"http"}
        assert selects(kinds["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], pods)
        policy = kinds["NetworkPolicy"]["spec"]
        assert (
            selects(policy["podSelector"]["matchLabels"], pods)
            and "Ingress" in policy["policyTypes"]
        )
        allowed = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
        assert allowed & {"http", answers["port"]}, "Prometheus and callers must reach the port"
        monitor = kinds["ServiceMonitor"]["spec"]
        assert selects(monitor["selector"]["matchLabels"], service["metadata"]["labels"])
        assert {"port": "http", "path": "/metrics"}.items() <= monitor["endpoints"][0].items()
        hpa = kinds["HorizontalPodAutoscaler"]["spec"]
        assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        minimum, maximum = replica_bounds(answers, environment)
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"] <= maximum
        if minimum is not None:
            assert hpa["minReplicas"] == minimum
        if environment == "prod":
            assert hpa["maxReplicas"] == maximum


@pytest.mark.integration
def test_the_review_checks_pass(rendered: Rendered) -> None:
    assert review_problems(rendered) == {}


# --- the app: probes, metrics, traces -------------------------------------------------------


def slo_metrics(slo: dict[str, Any]) -> set[str]:
    queries = [q for objective in slo["slos"] for q in objective["sli"]["events"].values()]
    return {name for query in queries for name in re.findall(r"([a-zA-Z_:][\w:]*)\{", query)}


def exposed(text: str) -> tuple[set[str], list[tuple[str, dict[str, str], float]]]:
    names: set[str] = set()
    samples = []
    for family in text_string_to_metric_families(text):
        names |= (
            {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
        )
        samples += [(sample.name, sample.labels, sample.value) for sample in family.samples]
    return names, samples


def test_the_app_serves_probes_and_metrics_and_exports_traces(
    rendered: Rendered, tmp_path: Path
) -> None:
    """As the image runs it (the runtime lock, uvicorn), with the internet out of reach."""
    python = lock_venv(rendered.dest / RUNTIME_LOCK, rendered.template.name)
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    with otlp_receiver() as receiver:
        env = offline_env(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s, not 5 s
            TMPDIR=str(tmp_path),
        )
        with (
            serving_app(rendered.dest, env, python=python) as url,
            httpx.Client(base_url=url, trust_env=False, timeout=10) as client,
        ):
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code in (200, 503)
            assert (ready.json()["status"] == "ready") == (ready.status_code == 200)
            missing = client.get("/contract/no-such-page", headers={"traceparent": traceparent})
            assert missing.status_code == 404
            scraped = client.get("/metrics")
        span = receiver.wait_for(lambda span: span.trace_id == CALLER_TRACE)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    names, samples = exposed(scraped.text)
    assert slo_metrics(load(rendered.dest / "slo.yaml")) <= names
    unmatched = {"method": "GET", "route": "unmatched", "code": "404"}
    assert ("http_requests_total", unmatched, 1.0) in samples  # the route, never the raw path
    assert not [s for s in samples if s[1].get("route") in PROBES]  # probes are not measured
    assert (span.kind, span.name, span.parent_span_id) == (
        SERVER_KIND,
        "GET unmatched",
        CALLER_SPAN,
    )
    assert span.attributes["http.route"] == "unmatched"
    assert span.attributes["http.response.status_code"] == 404
    assert span.resource["service.name"] == rendered.answers["name"]
    assert not [s for s in receiver.spans() if s.attributes.get("http.route") in PROBES]


# --- the generated service's own tests ------------------------------------------------------


# The non-default render is served above (its app imports and answers with those answers);
# the generated tests run once per template, on the defaults, as a newcomer renders it.
@pytest.mark.parametrize(
    "rendered", [(name, "defaults") for name in TEMPLATES], indirect=True, ids=list(TEMPLATES)
)
def test_the_generated_tests_pass_from_the_test_lock(rendered: Rendered) -> None:
    result = run_generated_tests(rendered.dest, rendered.template.name)  # a fresh venv
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
