"""Platform infrastructure of the seed agrees with infra/aws, and builds schema-valid.

Every cluster's infrastructure folder builds with the real kustomize and passes the schema
check; bucket names and the region reach manifests only as ``${VAR}`` from the ConfigMap
platform-settings the bootstrap stack writes (substituted by the Flux Kustomization
"infrastructure"), and nothing else in what that Kustomization applies looks like a
variable Flux would blank; the service accounts are the ones the Pod Identity associations
name; the NVIDIA device plugin tolerates the GPU node group's taint and selects its label;
the Qdrant backup runs as its association's service account; no credential is committed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import PINNED_KUBERNETES_VERSION, kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from tests.conftest import REPO, require_tool
from tests.infra import terraform_rules as rules

SEED = REPO / "gitops-repo"
INFRA = SEED / "infrastructure"
AWS = REPO / "infra" / "aws"
ENVIRONMENTS = ("dev", "staging", "prod")
NEW_FOLDERS = ("chaos-mesh", "nvidia-device-plugin", "qdrant-backup", "mlflow")
DISABLED = "kustomize.toolkit.fluxcd.io/substitute"
VARIABLE = re.compile(r"\$\{([^}]*)\}")
# Shapes of real credentials: AWS access key IDs, private keys, and a key or password
# given as a literal value instead of a reference.
CREDENTIALS = re.compile(
    r"(AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY|"
    r"(secret[-_]?access[-_]?key|password|token)\s*[:=]\s*[\"']?[A-Za-z0-9/+]{12,}",
    re.IGNORECASE,
)


def kubectl() -> Path:
    return require_tool("kubectl")


def build(folder: Path) -> list[dict[str, Any]]:
    return kustomize_build(folder, kubectl=kubectl())


def by_ref(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{obj['kind']}/{obj['metadata']['name']}": obj for obj in objects}


def cluster_stack(name: str) -> dict[str, Any]:
    return rules.load(AWS / "cluster" / name, REPO)


def platform_settings() -> set[str]:
    """The keys of the ConfigMap platform-settings the bootstrap stack writes."""
    document = rules.load(AWS / "bootstrap" / "main.tf", REPO)
    (settings,) = [block["platform_settings"] for block in document["locals"]]
    return set(settings)


def bucket_workloads() -> dict[str, dict[str, Any]]:
    (default,) = [
        body["default"]
        for name, body in rules.blocks(cluster_stack("variables.tf"), "variable")
        if name == "bucket_workloads"
    ]
    return dict(default)


def variables_in(obj: dict[str, Any]) -> set[str]:
    return set(VARIABLE.findall(yaml.safe_dump(obj)))


def substituted(obj: dict[str, Any]) -> bool:
    annotations = obj["metadata"].get("annotations") or {}
    labels = obj["metadata"].get("labels") or {}
    return "disabled" not in (annotations.get(DISABLED), labels.get(DISABLED))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_infrastructure_substitutes_from_platform_settings(env: str) -> None:
    (document,) = yaml.safe_load_all((SEED / "clusters" / env / "infrastructure.yaml").read_text())
    (source,) = document["spec"]["postBuild"]["substituteFrom"]
    assert source["kind"] == "ConfigMap" and source["name"] == "platform-settings"
    # prod's Tempo needs its bucket: a missing ConfigMap must stop Flux there, not blank it.
    assert source.get("optional", False) is (env != "prod")


@pytest.mark.integration
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_infrastructure_builds_schema_valid(env: str) -> None:
    objects = build(INFRA / env)
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []
    releases = {obj["metadata"]["name"] for obj in objects if obj["kind"] == "HelmRelease"}
    assert "nvidia-device-plugin" in releases
    assert ("chaos-mesh" in releases) is (env != "prod")


@pytest.mark.integration
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_platform_settings_are_substituted(env: str) -> None:
    # Flux replaces every ${NAME} of what "infrastructure" applies; a name the ConfigMap
    # lacks becomes "" (a Grafana dashboard's ${datasource}, say). Such an object must opt
    # out with the annotation kustomize.toolkit.fluxcd.io/substitute: disabled.
    known = platform_settings()
    unknown = {
        f"{obj['kind']}/{obj['metadata']['name']}": sorted(variables_in(obj) - known)
        for obj in build(INFRA / env)
        if substituted(obj) and variables_in(obj) - known
    }
    assert unknown == {}


@pytest.mark.integration
def test_the_substitution_check_finds_an_unknown_variable() -> None:
    objects = by_ref(build(INFRA / "prod"))
    tempo = objects["HelmRelease/tempo"]
    assert variables_in(tempo) == {"TEMPO_BUCKET", "AWS_REGION"}
    tempo["spec"]["values"]["tempo"]["storage"]["trace"]["s3"]["bucket"] = "${TEMPO_BUKET}"
    assert variables_in(tempo) - platform_settings() == {"TEMPO_BUKET"}
    tempo["metadata"]["annotations"] = {DISABLED: "disabled"}
    assert not substituted(tempo)


@pytest.mark.integration
def test_prod_tempo_stores_traces_in_its_pod_identity_bucket() -> None:
    workloads = bucket_workloads()["tempo-traces"]
    prod, staging = (by_ref(build(INFRA / env))["HelmRelease/tempo"] for env in ("prod", "staging"))
    assert (prod["metadata"]["namespace"], prod["metadata"]["name"]) == (
        workloads["namespace"],
        workloads["service_account"],  # the chart names its service account after the release
    )
    trace = prod["spec"]["values"]["tempo"]["storage"]["trace"]
    assert trace["backend"] == "s3"
    assert trace["s3"]["bucket"] == "${TEMPO_BUCKET}" and trace["s3"]["region"] == "${AWS_REGION}"
    assert not {"access_key", "secret_key"} & set(trace["s3"])
    # Patching keeps the base's receivers, and the other environments stay on the volume.
    assert "otlp" in prod["spec"]["values"]["tempo"]["receivers"]
    assert "storage" not in staging["spec"]["values"]["tempo"]


@pytest.mark.integration
def test_mlflow_runs_as_its_pod_identity_service_account() -> None:
    workloads = bucket_workloads()["mlflow-artifacts"]
    objects = by_ref(build(INFRA / "base" / "mlflow"))
    account = objects[f"ServiceAccount/{workloads['service_account']}"]
    assert account["metadata"]["namespace"] == workloads["namespace"]
    role = account["metadata"]["annotations"]["platform.example/pod-identity-role"]
    # infra/aws/cluster/pod_identity.tf names each role "<cluster name>-<bucket key>".
    assert role == "${CLUSTER_NAME}-mlflow-artifacts"
    assert "eks.amazonaws.com/role-arn" not in account["metadata"]["annotations"]
    pod = objects["Deployment/mlflow"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == workloads["service_account"]


@pytest.mark.integration
def test_the_device_plugin_runs_on_the_gpu_node_group_only() -> None:
    (eks,) = [body for name, body in rules.blocks(cluster_stack("main.tf"), "module")]
    gpu = eks["eks_managed_node_groups"]["gpu"]
    values = by_ref(build(INFRA / "base" / "nvidia-device-plugin"))[
        "HelmRelease/nvidia-device-plugin"
    ]["spec"]["values"]
    assert values["nodeSelector"].items() <= gpu["labels"].items()
    assert values["nodeSelector"] != eks["eks_managed_node_groups"]["system"]["labels"]
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute"}
    for taint in gpu["taints"].values():
        expected = {
            "key": taint["key"],
            "operator": "Equal",
            "value": taint["value"],
            "effect": effects[taint["effect"]],
        }
        assert expected in values["tolerations"], taint
    # The chart's default affinity wants Node Feature Discovery labels these nodes lack.
    assert values["affinity"] is None


@pytest.mark.integration
def test_the_qdrant_backup_uses_its_association_and_reaches_qdrant() -> None:
    workloads = bucket_workloads()["qdrant-backups"]
    objects = build(INFRA / "base" / "qdrant-backup")
    assert validate_objects(objects, PINNED_KUBERNETES_VERSION) == []
    refs = by_ref(objects)
    assert {obj["metadata"]["namespace"] for obj in objects} == {workloads["namespace"]}
    assert f"ServiceAccount/{workloads['service_account']}" in refs
    job = refs["CronJob/qdrant-backup"]["spec"]["jobTemplate"]["spec"]["template"]
    assert job["spec"]["serviceAccountName"] == workloads["service_account"]
    (upload,) = job["spec"]["containers"]
    env = {item["name"]: item for item in upload["env"]}
    assert env["BUCKET"]["value"] == "${QDRANT_BACKUP_BUCKET}"
    assert variables_in(refs["CronJob/qdrant-backup"]) <= platform_settings()
    # The scripts keep their shell variables: Flux must not substitute that ConfigMap.
    assert not substituted(refs["ConfigMap/qdrant-backup"])
    # Qdrant's own policy admits RAG clients only; this one admits the job's pods.
    policy = refs["NetworkPolicy/qdrant-backup"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "qdrant"}
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": job["metadata"]["labels"]}}]
    qdrant_image_port = 6333  # llmops/vector-db/service.yaml, http
    assert [port["port"] for port in rule["ports"]] == [qdrant_image_port]


def seed_files(folder: str) -> list[Path]:
    return sorted(path for path in (INFRA / "base" / folder).rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "path",
    [
        *(path for folder in NEW_FOLDERS for path in seed_files(folder)),
        *(path for env in ENVIRONMENTS for path in (INFRA / env).rglob("*.yaml")),
        *(SEED / "clusters" / env / "infrastructure.yaml" for env in ENVIRONMENTS),
    ],
    ids=lambda path: path.relative_to(SEED).as_posix(),
)
def test_no_literal_credentials(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not CREDENTIALS.search(text), CREDENTIALS.search(text)
    for document in yaml.safe_load_all(text):
        assert not (isinstance(document, dict) and document.get("kind") == "Secret")


def test_the_credential_pattern_finds_credentials() -> None:
    assert CREDENTIALS.search("aws_access_key_id: AKIAIOSFODNN7EXAMPLE")
    assert CREDENTIALS.search("secret-access-key: wJalrXUtnFEMIK7MDENGbPxRfiCY")
    assert not CREDENTIALS.search("key: secret-access-key\n  optional: true")
