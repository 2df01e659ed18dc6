"""The portal on Kubernetes: its manifests (the image and CI: tests/test_portal_image.py).

The manifests (gitops-repo/infrastructure/base/portal, portal-postgres, cloudnative-pg and
the overlays infrastructure/portal/<env>) build with the real kustomize and pass the
portal's own review checks, checked as a service's overlays are (as tests/llmops does);
every PORTAL_* variable they set is a real setting, credentials only come from Secret
references, the portal runs replicated behind oauth2-proxy, and it is wired into a cluster
the way the README says without a collision or a Flux wiring problem.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from portal.config import Settings
from portal.cost.model import Prices
from portal.integrations.checkov import CheckovCli
from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.review.collisions import find_collisions
from portal.review.flux_wiring import find_flux_wiring
from tests.conftest import REPO, require_tool
from tests.review.test_collisions import seed_tree
from tests.review.test_flux_wiring import DEPLOYMENT, SERVICE, exported_service

INFRA = REPO / "gitops-repo" / "infrastructure"
ENVIRONMENTS = ("dev", "staging", "prod")
WITH_CNPG = ("dev", "staging")  # prod uses an external database (the Secret portal-database)
# Settings whose values hold credentials: only ever from a Secret.
SECRET_SETTINGS = {"PORTAL_DATABASE_URL", "PORTAL_SECRET_KEY", "PORTAL_GITOPS_REMOTE"}
# checkov findings accepted on purpose, for each Deployment: CKV_K8S_35, the portal reads
# its settings and oauth2-proxy its client secret from environment variables only (each
# from a Secret reference); CKV_K8S_15, pinned tags, so IfNotPresent pulls the same image;
# CKV_K8S_38, the portal's own pods mount a token: they read Flux Kustomizations (rbac.yaml).
WAIVED = {
    (check, f"Deployment.portal.{name}")
    for check in ("CKV_K8S_35", "CKV_K8S_15")
    for name in ("portal", "oauth2-proxy", "portal-api")
} | {("CKV_K8S_38", "Deployment.portal.portal")}


def kubectl() -> Path:
    return require_tool("kubectl")


def built(folder: str) -> dict[str, dict[str, Any]]:
    objects = kustomize_build(INFRA / folder, kubectl=kubectl())
    return {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in objects}


def portal_container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (container,) = objects["Deployment/portal"]["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def as_service(root: Path) -> Path:
    """Lay the portal's folders out as a service: base/ under deploy/, each env an overlay."""
    service = root / "portal"
    for base in ("portal", "portal-postgres"):
        shutil.copytree(INFRA / "base" / base, service / "deploy" / "base" / base)
    for env in ENVIRONMENTS:
        shutil.copytree(INFRA / "portal" / env, service / "deploy" / "overlays" / env)
    return service


def not_passed(results: list[CheckResult]) -> dict[str, list[str]]:
    # The service-level policy check reads a catalog-info.yaml and slo.yaml a platform
    # component has not; the per-environment policy check runs on every object.
    return {
        result.name: [finding.message for finding in result.findings]
        for result in results
        if result.status != CheckStatus.PASSED and result.name != "policy"
    }


# Every folder builds: tests/test_gitops_seed.py builds every kustomization of the seed.


def test_each_environment_passes_the_review_checks(tmp_path: Path) -> None:
    tools = CheckTools(kubectl=kubectl())
    service = as_service(tmp_path)
    results = run_manifest_checks(service, ENVIRONMENTS, lambda _owner: True, Prices(), tools)
    ran = {result.name for result in results}
    for env in ENVIRONMENTS:
        expected = {f"{check} ({env})" for check in ("kustomize", "schema", "policy", "semantics")}
        assert expected <= ran, f"checks that did not run: {sorted(expected - ran)}"
    assert not_passed(results) == {}


def test_a_broken_portal_fails_the_same_checks(tmp_path: Path) -> None:
    # The harness can fail: replicas beside the HPA, and an image without a tag.
    service = as_service(tmp_path)
    deployment = service / "deploy" / "base" / "portal" / "deployment.yaml"
    text = deployment.read_text(encoding="utf-8")
    broken = text.replace(
        "  revisionHistoryLimit: 5\n", "  replicas: 1\n  revisionHistoryLimit: 5\n"
    )
    broken = broken.replace("platform/portal:0.1.0", "platform/portal")
    assert broken.count("replicas: 1") == 1 and "portal:0.1.0" not in broken
    deployment.write_text(broken, encoding="utf-8")
    tools = CheckTools(kubectl=kubectl())
    results = run_manifest_checks(service, ["dev"], lambda _owner: True, Prices(), tools)
    messages = not_passed(results)["policy (dev)"]
    assert any("an HPA scales this Deployment" in message for message in messages)
    assert any("has no tag" in message for message in messages)


def test_the_operator_folder_passes_the_schema_check() -> None:
    objects = list(built("base/cloudnative-pg").values())
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []
    kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in objects}
    assert kinds == {
        ("Namespace", "cnpg-system"),
        ("HelmRepository", "cnpg"),
        ("HelmRelease", "cloudnative-pg"),
    }
    repository = next(obj for obj in objects if obj["kind"] == "HelmRepository")
    assert repository["spec"]["url"] == "https://cloudnative-pg.github.io/charts"


def test_the_cluster_schema_refuses_a_cluster_without_instances() -> None:
    objects = list(built("base/portal-postgres").values())
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []
    del objects[0]["spec"]["instances"]
    findings = validate_objects(objects, PINNED_KUBERNETES_VERSION)
    assert findings and "instances" in findings[0].message


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_portal_variable_is_a_real_setting(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = built(f"portal/{env}")
    container = portal_container(objects)
    (source,) = container["envFrom"]
    settings = objects[f"ConfigMap/{source['configMapRef']['name']}"]["data"]
    names = set(settings) | set(env_of(container))
    fields = {f"PORTAL_{field.upper()}" for field in Settings.model_fields}
    portal_names = {name for name in names if name.startswith("PORTAL_")}
    assert portal_names - fields == set(), "not settings of portal/config.py"
    assert names - portal_names == {"HOME"}
    # The values parse: every setting is read the way `portal serve` reads it.
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    parsed = Settings(secret_key="k")
    assert parsed.auth_mode == "trusted-header"
    (rule,) = objects["Ingress/portal"]["spec"]["rules"]
    assert parsed.template_public_base_url == f"https://{rule['host']}/templates.git"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_credentials_come_only_from_secret_references(env: str) -> None:
    objects = built(f"portal/{env}")
    assert not [ref for ref in objects if ref.startswith("Secret/")]
    for ref, obj in objects.items():
        text = yaml.safe_dump(obj)
        assert not re.search(r"://[^/\s@:]+:[^/\s@]+@", text), f"{ref} holds a credential URL"
        if obj["kind"] == "ConfigMap":
            assert not SECRET_SETTINGS & set(obj["data"]), f"{ref} holds a secret setting"
    for deployment in ("Deployment/portal", "Deployment/oauth2-proxy", "Deployment/portal-api"):
        (container,) = objects[deployment]["spec"]["template"]["spec"]["containers"]
        for name, item in env_of(container).items():
            if name in SECRET_SETTINGS or re.search(r"SECRET|CLIENT_ID|DATABASE", name):
                assert "value" not in item, f"{deployment} sets {name} to a literal"
                assert item["valueFrom"]["secretKeyRef"]["key"], name
    assert set(env_of(portal_container(objects))) >= SECRET_SETTINGS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_portal_runs_replicated_and_survives_disruptions(env: str) -> None:
    objects = built(f"portal/{env}")
    assert "replicas" not in objects["Deployment/portal"]["spec"]  # the HPA owns it
    hpa = objects["HorizontalPodAutoscaler/portal"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "portal" and hpa["minReplicas"] >= 2
    assert hpa["maxReplicas"] >= hpa["minReplicas"]
    for name in ("oauth2-proxy", "portal-api"):
        assert objects[f"Deployment/{name}"]["spec"]["replicas"] >= 2
    for name in ("portal", "oauth2-proxy", "portal-api"):
        pdb = objects[f"PodDisruptionBudget/{name}"]["spec"]
        assert pdb["minAvailable"] >= 1
        labels = objects[f"Deployment/{name}"]["spec"]["template"]["metadata"]["labels"]
        assert pdb["selector"]["matchLabels"].items() <= labels.items()
    if env == "prod":
        assert hpa["minReplicas"] >= 3


def test_the_pod_is_non_root_on_a_read_only_root_with_scratch_volumes() -> None:
    objects = built("base/portal")
    pod = objects["Deployment/portal"]["spec"]["template"]["spec"]
    container = portal_container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    empty = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    assert set(mounts) == empty
    settings = objects["ConfigMap/portal-settings"]["data"]
    # Everything the portal writes lands on a volume: its data dir, renders and /tmp.
    for path in (settings["PORTAL_DATA_DIR"], settings["PORTAL_SCRATCH_DIR"], "/tmp"):
        assert path in mounts.values(), path
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]
    assert [port["containerPort"] for port in container["ports"]] == [8000]


def test_the_probes_ask_endpoints_that_answer(client: TestClient) -> None:
    container = portal_container(built("base/portal"))
    probes = [container[key] for key in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"  # the database too
    for probe in probes:
        response = client.get(probe["httpGet"]["path"])
        assert response.status_code == 200, probe


def proxy_args(objects: dict[str, dict[str, Any]], name: str) -> list[str]:
    (container,) = objects[f"Deployment/{name}"]["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def test_only_the_proxies_reach_the_portal_and_they_set_its_identity_headers() -> None:
    objects = built("base/portal")
    data = objects["ConfigMap/portal-settings"]["data"]
    # oauth2-proxy's --pass-user-headers sends exactly these two names (and strips them).
    assert (data["PORTAL_USER_HEADER"], data["PORTAL_GROUPS_HEADER"]) == (
        "X-Forwarded-User",
        "X-Forwarded-Groups",
    )
    app = objects["Service/portal-app"]
    upstream = (
        f"--upstream=http://portal-app.portal.svc.cluster.local:{app['spec']['ports'][0]['port']}"
    )
    for proxy in ("oauth2-proxy", "portal-api"):
        args = proxy_args(objects, proxy)
        assert upstream in args and "--pass-user-headers=true" in args
        # No Authorization header of the proxy's own: it would hide a caller's API token.
        assert "--pass-basic-auth=false" in args and "--pass-authorization-header=false" in args
    # People: every route needs a session. Machines: only /api/, with identity headers removed.
    assert not [arg for arg in proxy_args(objects, "oauth2-proxy") if arg.startswith("--skip-auth")]
    machine = [arg for arg in proxy_args(objects, "portal-api") if arg.startswith("--skip-auth")]
    assert machine == ["--skip-auth-route=^/api/", "--skip-auth-strip-headers=true"]
    backend = objects["Ingress/portal"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "oauth2-proxy"
    policy = objects["NetworkPolicy/portal"]["spec"]
    sources = [source for rule in policy["ingress"] for source in rule["from"]]
    proxies = [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": name}}}
        for name in ("oauth2-proxy", "portal-api")
    ]
    monitoring = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    assert sources == [*proxies, monitoring]


def test_machines_reach_the_portal_where_the_detector_template_sends_them() -> None:
    objects = built("base/portal")
    copier = yaml.safe_load((REPO / "templates/aiops-detector/copier.yml").read_text("utf-8"))
    found = re.fullmatch(
        r"http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)", copier["portal_url"]["default"]
    )
    assert found, copier["portal_url"]["default"]
    name, namespace, port = found[1], found[2], int(found[3])
    service = objects[f"Service/{name}"]
    assert service["metadata"]["namespace"] == namespace
    (service_port,) = service["spec"]["ports"]
    assert service_port["port"] == port
    pod = objects["Deployment/portal-api"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    # The detector's egress opens the Service's port, which a policy sees on the pod: the same.
    (container,) = pod["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    (rule,) = objects["NetworkPolicy/portal-api"]["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [port]
    (source,) = rule["from"]
    text = (REPO / "templates/aiops-detector/template/deploy/base/namespace.yaml.jinja").read_text()
    labels = yaml.safe_load(text.replace("{{ name }}", "svc"))["metadata"]["labels"]
    assert source["namespaceSelector"]["matchLabels"].items() <= labels.items()


def test_prometheus_scrapes_the_portal_as_the_job_its_slos_select() -> None:
    objects = built("base/portal")
    monitor = objects["ServiceMonitor/portal"]["spec"]
    scraped = [
        obj
        for obj in objects.values()
        if obj["kind"] == "Service"
        and monitor["selector"]["matchLabels"].items() <= obj["metadata"]["labels"].items()
    ]
    assert [obj["metadata"]["name"] for obj in scraped] == ["portal-app"]
    job = scraped[0]["metadata"]["labels"][monitor["jobLabel"]]
    assert f'job="{job}"' in (REPO / "sre" / "slos" / "portal.yaml").read_text(encoding="utf-8")
    (endpoint,) = monitor["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")


def test_the_urls_name_the_services_the_seed_runs() -> None:
    settings = built("base/portal")["ConfigMap/portal-settings"]["data"]
    mlflow = built("base/mlflow")["Service/mlflow"]
    port = mlflow["spec"]["ports"][0]["port"]
    assert settings["PORTAL_MLFLOW_URL"] == f"http://mlflow.mlflow.svc.cluster.local:{port}"
    monitoring = built("dev")
    stack = next(
        obj for obj in monitoring.values() if obj["metadata"]["name"] == "kube-prometheus-stack"
    )
    datasources = stack["spec"]["values"]["grafana"]["additionalDataSources"]
    assert settings["PORTAL_TEMPO_URL"] == next(
        d["url"] for d in datasources if d["type"] == "tempo"
    )
    # The chart names Prometheus' Service after the release: <release>-prometheus.
    release = stack["metadata"]["name"]
    assert settings["PORTAL_PROMETHEUS_URL"] == f"http://{release}-prometheus.monitoring.svc:9090"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_overlay_chooses_the_database(env: str) -> None:
    objects = built(f"portal/{env}")
    secret = env_of(portal_container(objects))["PORTAL_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    clusters = [obj for obj in objects.values() if obj["kind"] == "Cluster"]
    if env in WITH_CNPG:
        (cluster,) = clusters
        # The operator writes the connection string into <cluster>-app, key uri.
        assert secret == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}
        assert cluster["metadata"]["namespace"] == "portal"
        assert cluster["spec"]["instances"] == (1 if env == "dev" else 2)
    else:
        assert clusters == [] and secret == {"name": "portal-database", "key": "uri"}


# What README "Running the portal on Kubernetes" tells a cluster to add.
PORTAL_KUSTOMIZATION = """\
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: portal, namespace: flux-system}}
spec:
  dependsOn: [{{name: infrastructure}}]
  interval: 10m0s
  path: ./infrastructure/portal/{env}
  prune: true
  wait: true
  sourceRef: {{kind: GitRepository, name: flux-system}}
"""


def wired_tree() -> dict[str, bytes]:
    """The seed with the portal wired in as README says: operator and a Flux Kustomization."""
    files = seed_tree()
    for env in ENVIRONMENTS:
        path = f"infrastructure/{env}/kustomization.yaml"
        document = yaml.safe_load(files[path])
        if env in WITH_CNPG:
            document["resources"].append("../base/cloudnative-pg")
        files[path] = yaml.safe_dump(document, sort_keys=False).encode()
        files[f"clusters/{env}/portal.yaml"] = PORTAL_KUSTOMIZATION.format(env=env).encode()
    return files


def test_a_cluster_that_runs_the_portal_has_no_collision() -> None:
    subject, findings = find_collisions(wired_tree(), "payments", {}, kubectl=kubectl())
    assert findings == []
    assert subject.endswith("objects in the cluster builds of dev, prod, staging")


def test_flux_finds_every_kind_the_portal_uses_installed(tmp_path: Path) -> None:
    # The Cluster kind is installed by the cloudnative-pg chart (CRD_CHARTS), ServiceMonitor
    # by kube-prometheus-stack, both applied by "infrastructure", which "portal" depends on.
    files = wired_tree()
    built_service = {env: [DEPLOYMENT] for env in ENVIRONMENTS}
    _, findings = find_flux_wiring(
        files,
        SERVICE,
        exported_service(tmp_path),
        built_service,
        PINNED_KUBERNETES_VERSION,
        base_files=seed_tree(),
    )
    assert findings == []


def test_checkov_finds_nothing_beyond_the_waived_checks() -> None:
    checkov = CheckovCli(require_tool("checkov"), skip_checks=["CKV_K8S_43"])
    manifests = {
        f"portal-{env}.yaml": yaml.safe_dump_all(list(built(f"portal/{env}").values()))
        for env in ENVIRONMENTS
    }
    found = {(failure.check_id, failure.resource) for failure in checkov.scan(manifests)}
    assert found <= WAIVED, sorted(found - WAIVED)
