"""What is specific to the aiops-detector template's render: its questions, the answers in the
rendered settings and Deployment, the portal token as a Secret reference, the model registry
(its URL, the egress to it, each overlay's pin, the catalog's annotations), the remediation
rules as a hashed ConfigMap mounted read-only, and the anomaly alerts. The generated app,
served as the image runs it, is tested in test_aiops_served_app.py.

Everything every template provides (files, objects of every overlay, review checks, probes,
metrics, traces, the generated tests from the lock) is checked by test_contract.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import PublishedTemplate, discover
from portal.scaffold.registry.manifest import load_template
from tests.conftest import require_tool
from tests.templates.aiops_render import DEFAULTS, TEMPLATE, published_template, render_aiops
from tests.templates.rendering import TEMPLATES_DIR, Rendered, built_overlays, by_kind, load
from tests.templates.service_process import offline_env
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

CUSTOM: dict[str, object] = {
    **DEFAULTS,
    "name": "search-anomalies",
    "prometheus_url": "http://prometheus.observability.svc:9090",
    "portal_url": "https://portal.example.com",
    "detect_interval_seconds": "300",
    "dry_run": False,
    "false_alarm_rate": "0.0005",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    with published_template(tmp_path_factory.mktemp("data")) as template:
        yield template


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_aiops(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_aiops(published, CUSTOM, tmp_path_factory.mktemp("gitops"))


# --- the template and its questions ----------------------------------------------------------


def test_the_template_is_registered_with_its_questions() -> None:
    (info,) = [i for i in discover(TEMPLATES_DIR) if i.name == "aiops-detector"]
    assert (info.title, info.owner, info.version) == (
        "AIOps anomaly detector",
        "platform-team",
        "0.5.0",
    )
    # Every model version records the template's version: written as a literal (a value
    # read from Copier's answers would keep the template from rendering from its snapshot).
    settings = TEMPLATES_DIR / "aiops-detector" / "template" / "app" / "settings.py.jinja"
    assert f'TEMPLATE_VERSION = "{info.version}"' in settings.read_text(encoding="utf-8")
    questions = {q.name: q for q in info.questions}
    defaults = {
        name: questions[name].default
        for name in ("prometheus_url", "portal_url", "detect_interval_seconds", "dry_run")
    }
    assert defaults == {
        "prometheus_url": "http://prometheus-operated.monitoring.svc:9090",
        "portal_url": "http://portal.portal.svc:8000",
        "detect_interval_seconds": 60,
        "dry_run": True,
    }
    assert questions["false_alarm_rate"].default == 0.001
    assert questions["dry_run"].kind == "bool"
    assert not any("token" in name for name in questions)  # a secret is never an answer


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"prometheus_url": "prometheus:9090"}, "prometheus_url", "http(s) URL"),
        ({"prometheus_url": "http://p:9090/?q=x"}, "prometheus_url", "http(s) URL"),
        ({"portal_url": "ftp://portal"}, "portal_url", "http(s) URL"),
        ({"detect_interval_seconds": "5"}, "detect_interval_seconds", "between 15 and 3600"),
        ({"false_alarm_rate": "0.5"}, "false_alarm_rate", "between 0.00001 and"),
        ({"false_alarm_rate": "0"}, "false_alarm_rate", "between 0.00001 and"),
        ({"replicas_min": "3", "replicas_max": "2"}, "replicas_max", "at least the minimum (3)"),
    ],
)
def test_bad_answers_get_a_message_on_their_field(
    answers: dict[str, object], field: str, message: str
) -> None:
    _, errors = validate_answers(load_template(TEMPLATE).questions, {**DEFAULTS, **answers})
    assert message in errors[field]


# --- renders ---------------------------------------------------------------------------------


def _container(service: Rendered) -> dict[str, Any]:
    deployment = load(service.dest / "deploy" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_portal_token_is_a_secret_reference_never_a_value(default_service: Rendered) -> None:
    env = {item["name"]: item for item in _container(default_service)["env"]}
    token = env["PORTAL_TOKEN"]
    assert "value" not in token  # no secret in the GitOps repository
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "checkout-anomalies-portal-token",
        "key": "token",
        "optional": True,
    }
    answers = (default_service.dest / ".copier-answers.yml").read_text(encoding="utf-8")
    assert "token" not in answers


def test_custom_answers_reach_the_settings_and_the_deployment(custom_service: Rendered) -> None:
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
    assert settings["service_name"] == "search-anomalies"
    assert settings["prometheus_url"] == "http://prometheus.observability.svc:9090"
    assert settings["portal_url"] == "https://portal.example.com"
    assert settings["detect_interval_seconds"] == 300
    assert settings["false_alarm_rate"] == 0.0005 and settings["portal_token"] == ""
    env = {item["name"]: item.get("value") for item in _container(custom_service)["env"]}
    assert env["PROMETHEUS_URL"] == "http://prometheus.observability.svc:9090"
    assert env["PORTAL_URL"] == "https://portal.example.com"
    assert (env["DETECT_INTERVAL_SECONDS"], env["FALSE_ALARM_RATE"]) == ("300", "0.0005")
    assert env["MODEL_DIR"] == "/models"
    # Dry run is said once, in the reviewed rules file (no DRY_RUN variable to disagree).
    assert "DRY_RUN" not in env
    rules = load(custom_service.dest / "deploy" / "base" / "remediation.yaml")
    assert (rules["dry_run"], rules["rules"]) == (False, [])
    assert rules["detector_url"] == "http://search-anomalies.search-anomalies.svc.cluster.local"


PIN = """\
# The model version the {env} environment of {service} serves: a version of
# {service}-detector in the MLflow model registry. Changes are proposed from the
# portal's Models page and reviewed like any other; empty: the service serves the model
# it trains itself.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {service}
spec:
  template:
    spec:
      containers:
        - name: app
          env:
            - name: MODEL_VERSION
              value: ""
"""


def _egress(objects: list[dict[str, Any]]) -> list[tuple[str | None, int]]:
    """Return each egress rule's namespace (None: any destination) and port."""
    rules = by_kind(objects)["NetworkPolicy"]["spec"]["egress"]
    found = []
    for rule in rules:
        namespaces = [
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule.get("to", [])
        ] or [None]
        found += [(ns, port["port"]) for ns in namespaces for port in rule["ports"]]
    return found


@pytest.mark.integration
@pytest.mark.parametrize("which", ["default", "custom"])
def test_the_model_registry_is_reachable_and_each_overlay_pins_a_version(
    which: str, default_service: Rendered, custom_service: Rendered
) -> None:
    """MLFLOW_TRACKING_URI in every overlay, egress to it, an empty pin per environment."""
    service = default_service if which == "default" else custom_service
    name = str(service.answers["name"])
    for environment, objects in built_overlays(service.dest).items():
        pin = service.dest / "deploy" / "overlays" / environment / "model.yaml"
        assert pin.read_text(encoding="utf-8") == PIN.format(env=environment, service=name)
        kustomization = load(pin.with_name("kustomization.yaml"))
        assert {"path": "model.yaml"} in kustomization["patches"]
        (container,) = by_kind(objects)["Deployment"]["spec"]["template"]["spec"]["containers"]
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc.cluster.local:5000"
        assert env["MODEL_VERSION"] == ""
        egress = _egress(objects)
        assert {("mlflow", 5000), ("kube-system", 53), ("monitoring", 4318)} <= set(egress)
        if which == "default":  # the answers' in-cluster Services, by namespace and port
            assert {("monitoring", 9090), ("portal", 8000)} <= set(egress)
        else:  # prometheus.observability.svc:9090 and https://portal.example.com
            assert {("observability", 9090), (None, 443)} <= set(egress)
    annotations = load(service.dest / "catalog-info.yaml")["metadata"]["annotations"]
    assert {key: value for key, value in annotations.items() if "model" in key} == {
        "portal.platform/models": f"{name}-detector",
        "portal.platform/model-metric": "holdout_f1",
        "portal.platform/model-metric-direction": "higher",
        "portal.platform/model-tolerance": "0.02",
    }


@pytest.mark.integration
def test_the_rules_are_a_configmap_mounted_read_only_that_rolls_the_pods(
    default_service: Rendered, tmp_path: Path
) -> None:
    """deploy/base/remediation.yaml becomes a hashed ConfigMap: a reviewed change rolls the pods."""
    rules_file = default_service.dest / "deploy" / "base" / "remediation.yaml"
    assert load(rules_file)["dry_run"] is True  # the default answer
    names = set()
    for environment, objects in built_overlays(default_service.dest).items():
        kinds = by_kind(objects)
        config = kinds["ConfigMap"]
        assert config["metadata"]["name"].startswith("checkout-anomalies-remediation-")
        assert config["metadata"]["namespace"] == "checkout-anomalies"
        assert config["data"] == {"remediation.yaml": rules_file.read_text(encoding="utf-8")}
        pod = kinds["Deployment"]["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["remediation"]["configMap"]["name"] == config["metadata"]["name"]
        (container,) = pod["containers"]
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        assert mounts["remediation"] == {
            "name": "remediation",
            "mountPath": "/etc/aiops",
            "readOnly": True,
        }
        env = {item["name"]: item.get("value") for item in container["env"]}
        assert env["REMEDIATION_FILE"] == "/etc/aiops/remediation.yaml", environment
        names.add(config["metadata"]["name"])
    assert len(names) == 1
    changed = tmp_path / "service"
    shutil.copytree(default_service.dest, changed)
    edited = changed / "deploy" / "base" / "remediation.yaml"
    edited.write_text(edited.read_text().replace("dry_run: true", "dry_run: false"))
    rebuilt = by_kind(built_overlays(changed)["dev"])
    new_name = rebuilt["ConfigMap"]["metadata"]["name"]
    assert new_name not in names  # a new name: the pod template changes, the pods roll
    volumes = rebuilt["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "remediation", "configMap": {"name": new_name}} in volumes


@pytest.mark.integration
def test_the_anomaly_alerts_are_valid_rules(default_service: Rendered, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rule = load(default_service.dest / "deploy" / "base" / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    rules = [item for group in rule["spec"]["groups"] for item in group["rules"]]
    assert {item["alert"] for item in rules} == {
        "CheckoutAnomaliesAnomalyCritical",
        "CheckoutAnomaliesAnomalyWarning",
        "CheckoutAnomaliesEvaluationsFailing",
    }
    assert all('namespace="checkout-anomalies"' in item["expr"] for item in rules)
    rule_file = tmp_path / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), encoding="utf-8")
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
