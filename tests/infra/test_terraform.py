"""infra/aws holds to the structural rules, and agrees with the GitOps repository and llmops/.

No Terraform binary runs here: every file is parsed with python-hcl2 and checked by the
rules of :mod:`tests.infra.terraform_rules` (their own tests feed them bad snippets), and
the names the stacks share with the manifests (the GPU taint vLLM tolerates, the
namespaces of the Pod Identity service accounts, Flux's cluster paths) are compared with
the manifests themselves.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra import terraform_rules as rules

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / "infra" / "aws"
GITOPS = REPO / "gitops-repo"
LLMOPS = REPO / "llmops"
STACKS = ("network", "cluster", "bootstrap")
ENVIRONMENTS = ("dev", "staging", "prod")
# What each stack reads from the one before it through terraform_remote_state.
UPSTREAM = {"cluster": ("network", "local.network"), "bootstrap": ("cluster", "local.cluster")}
HCL_FILES = sorted(
    path for pattern in ("*.tf", "*.tfvars", "*.tfbackend") for path in AWS.rglob(pattern)
)


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def stack(name: str) -> dict[str, dict[str, Any]]:
    """Parse the ``.tf`` files of one root module, by file name."""
    return {_name(path): rules.load(path, REPO) for path in sorted((AWS / name).glob("*.tf"))}


def _one(stack_files: dict[str, dict[str, Any]], kind: str, label: str) -> dict[str, Any]:
    found = [
        body
        for document in stack_files.values()
        for name, body in rules.blocks(document, kind)
        if name == label
    ]
    assert len(found) == 1, f"expected one {kind} {label!r}, found {len(found)}"
    return found[0]


def _resource(stack_files: dict[str, dict[str, Any]], address: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        body
        for document in stack_files.values()
        for name, body in rules.resources(document)
        if name == address
    ]
    assert len(found) == 1, f"expected one resource {address}, found {len(found)}"
    return found[0]


def test_the_stacks_and_the_gitops_clusters_match() -> None:
    """One environment folder per GitOps cluster folder; every stack has the usual files."""
    clusters = sorted(path.name for path in (GITOPS / "clusters").iterdir() if path.is_dir())
    assert sorted(path.name for path in (AWS / "environments").iterdir()) == clusters
    assert sorted(ENVIRONMENTS) == clusters
    for name in STACKS:
        files = {path.name for path in (AWS / name).glob("*.tf")}
        assert {"versions.tf", "variables.tf", "main.tf", "outputs.tf"} <= files, name


@pytest.mark.parametrize("path", HCL_FILES, ids=_name)
def test_every_file_parses_without_findings(path: Path) -> None:
    """Pinned versions, typed and validated variables, no credentials, locked backends."""
    document = rules.load(path, REPO)
    file = _name(path)
    text = path.read_text(encoding="utf-8")
    findings = rules.all_findings(
        [
            rules.check_versions(file, document),
            rules.check_variables(file, document),
            rules.check_credentials(file, document, text),
            rules.check_backend(file, document),
        ]
    )
    assert findings == []


@pytest.mark.parametrize("name", STACKS)
def test_every_stack_pins_terraform_tags_and_locks_its_state(name: str) -> None:
    """required_version allows S3-native locking (1.11+), tags everywhere, one S3 backend."""
    files = stack(name)
    terraform = [t for document in files.values() for t in rules.terraform_blocks(document)]
    assert len(terraform) == 1, "one terraform block per stack"
    lower = re.match(r">=\s*(\d+)\.(\d+)", str(terraform[0].get("required_version")))
    assert lower, "required_version states a lower bound"
    assert (int(lower.group(1)), int(lower.group(2))) >= (1, 11), "use_lockfile needs 1.11"
    assert rules.all_findings([rules.check_tags(files)]) == []
    assert rules.backends(files) == ["s3"]


@pytest.mark.parametrize("name", STACKS)
def test_outputs_are_described_and_cover_what_the_next_stack_reads(name: str) -> None:
    """Each output has a description; every ``local.<upstream>.<x>`` a stack reads exists."""
    outputs = {
        label: body
        for document in stack(name).values()
        for label, body in rules.blocks(document, "output")
    }
    assert outputs, f"{name} has no outputs"
    assert all(str(body.get("description", "")).strip() for body in outputs.values())
    for downstream, (upstream, prefix) in UPSTREAM.items():
        if upstream != name:
            continue
        text = "".join(path.read_text(encoding="utf-8") for path in (AWS / downstream).glob("*.tf"))
        read = set(re.findall(rf"{re.escape(prefix)}\.(\w+)", text))
        assert read, f"{downstream} reads nothing from {upstream}"
        assert read <= set(outputs), f"{downstream} reads missing outputs {read - set(outputs)}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("name", STACKS)
def test_each_environment_configures_every_stack(environment: str, name: str) -> None:
    """tfvars set exactly the stack's variables; the backend config keys state by env/stack."""
    folder = AWS / "environments" / environment
    tfvars, backend = folder / f"{name}.tfvars", folder / f"{name}.s3.tfbackend"
    assert tfvars.is_file() and backend.is_file(), f"{environment} lacks {name}'s files"
    declared = rules.variables(stack(name))
    findings = rules.check_tfvars(
        _name(tfvars), rules.load(tfvars, REPO), declared, environment
    ) + rules.check_backend_config(
        _name(backend), rules.load(backend, REPO), f"{environment}/{name}.tfstate"
    )
    assert rules.all_findings([findings]) == []


@pytest.mark.parametrize("downstream", sorted(UPSTREAM))
def test_remote_state_reads_the_key_the_upstream_stack_writes(downstream: str) -> None:
    """cluster reads <env>/network.tfstate, bootstrap <env>/cluster.tfstate, from one bucket."""
    upstream = UPSTREAM[downstream][0]
    remote = [
        body
        for document in stack(downstream).values()
        for address, body in rules.resources(document, "data")
        if address.startswith("terraform_remote_state.")
    ]
    assert len(remote) == 1
    assert remote[0]["backend"] == "s3"
    config = remote[0]["config"]
    assert config["key"] == f"${{var.environment}}/{upstream}.tfstate"
    assert config["bucket"] == "${var.state_bucket}"


def test_the_gpu_node_group_is_what_vllm_tolerates_and_selects() -> None:
    """The GPU group's taint is tolerated by vLLM and its label is vLLM's nodeSelector."""
    deployment = yaml.safe_load((LLMOPS / "llm-serving/vllm/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    groups = _one(stack("cluster"), "module", "eks")["eks_managed_node_groups"]
    gpu = groups["gpu"]
    assert gpu["ami_type"].endswith("_NVIDIA")
    effects = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute"}
    for taint in gpu["taints"].values():
        assert any(
            toleration["key"] == taint["key"]
            and toleration["effect"] == effects[taint["effect"]]
            and (
                toleration.get("operator") == "Exists" or toleration.get("value") == taint["value"]
            )
            for toleration in pod["tolerations"]
        ), f"vLLM does not tolerate {taint}"
    assert pod["nodeSelector"].items() <= gpu["labels"].items()
    # Nothing else lands on GPUs: the system group has no GPU label and no taint to tolerate.
    assert groups["system"]["labels"] != gpu["labels"]


def test_the_vpc_cni_enforces_network_policies_and_pod_identity_runs() -> None:
    """The VPC CNI add-on has network policy enforcement on, before any node joins."""
    addons = _one(stack("cluster"), "module", "eks")["addons"]
    cni = addons["vpc-cni"]
    assert cni["before_compute"] is True
    assert re.search(r'enableNetworkPolicy\s*=\s*"true"', cni["configuration_values"])
    assert addons["eks-pod-identity-agent"]["before_compute"] is True


# An EKS add-on build: v<major>.<minor>.<patch>-eksbuild.<n>, nothing looser.
ADDON_VERSION = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
# What main.tf may put in an add-on's addon_version: one entry of var.addon_versions.
ADDON_VERSION_REFERENCE = re.compile(r'^\$\{var\.addon_versions\["([a-z0-9-]+)"\]\}$')


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_addon_is_pinned_to_an_exact_build_of_the_kubernetes_version(
    environment: str,
) -> None:
    """No add-on follows most_recent: each gets its own exact build, for each environment."""
    files = stack("cluster")
    addons = _one(files, "module", "eks")["addons"]
    tfvars = rules.load(AWS / "environments" / environment / "cluster.tfvars", REPO)
    # An environment's tfvars may override the defaults; what it sets is what it installs.
    versions = tfvars.get("addon_versions", _one(files, "variable", "addon_versions")["default"])
    assert {"vpc-cni", "eks-pod-identity-agent", "kube-proxy", "coredns"} <= set(addons)
    for name, addon in addons.items():
        assert addon.get("most_recent", True) is False, f"{name} would follow most_recent"
        reference = ADDON_VERSION_REFERENCE.match(str(addon.get("addon_version", "")))
        assert reference and reference.group(1) == name, f"{name}: {addon.get('addon_version')}"
        assert ADDON_VERSION.match(str(versions.get(name, ""))), f"{name}: {versions.get(name)}"
    # Nothing pinned for an add-on the cluster does not install.
    assert set(versions) == set(addons)
    # kube-proxy's builds follow the Kubernetes minor version (the variable validates it too).
    assert versions["kube-proxy"].startswith(f"v{tfvars['kubernetes_version']}.")


def _namespaces(*folders: Path) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in folder.rglob("*.yaml"):
            for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if not isinstance(document, dict) or "metadata" not in document:
                    continue
                if document.get("kind") == "Namespace":
                    found.add(document["metadata"]["name"])
    return found


def test_every_bucket_is_private_versioned_encrypted_and_reachable_by_pod_identity() -> None:
    """Every bucket gets each protection, and an association in a namespace that exists."""
    files = stack("cluster")
    workloads = _one(files, "variable", "bucket_workloads")["default"]
    assert set(workloads) == {"mlflow-artifacts", "tempo-traces", "qdrant-backups"}
    namespaces = _namespaces(GITOPS / "infrastructure", LLMOPS)
    for workload in workloads.values():
        assert workload["namespace"] in namespaces, workload
    for address in (
        "aws_s3_bucket.workload",
        "aws_s3_bucket_versioning.workload",
        "aws_s3_bucket_public_access_block.workload",
        "aws_s3_bucket_server_side_encryption_configuration.workload",
        "aws_s3_bucket_ownership_controls.workload",
        "aws_s3_bucket_policy.workload",
        "aws_iam_role.workload",
        "aws_eks_pod_identity_association.workload",
    ):
        assert _resource(files, address)["for_each"] == "${var.bucket_workloads}", address
    block = _resource(files, "aws_s3_bucket_public_access_block.workload")
    assert all(block[key] is True for key in ("block_public_acls", "block_public_policy"))
    assert all(block[key] is True for key in ("ignore_public_acls", "restrict_public_buckets"))
    versioning = _resource(files, "aws_s3_bucket_versioning.workload")
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    encryption = _resource(files, "aws_s3_bucket_server_side_encryption_configuration.workload")
    default = encryption["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default["sse_algorithm"] == "aws:kms"
    association = _resource(files, "aws_eks_pod_identity_association.workload")
    assert association["namespace"] == "${each.value.namespace}"
    assert association["service_account"] == "${each.value.service_account}"


def test_flux_is_bootstrapped_per_environment_with_image_automation() -> None:
    """flux_bootstrap_git syncs clusters/<env>, with the image controllers, offline manifests."""
    files = stack("bootstrap")
    bootstrap = _resource(files, "flux_bootstrap_git.this")
    assert bootstrap["path"] == "clusters/${var.environment}"
    assert set(bootstrap["components_extra"]) == {
        "image-reflector-controller",
        "image-automation-controller",
    }
    assert bootstrap["embedded_manifests"] is True
    for environment in ENVIRONMENTS:
        sync = GITOPS / "clusters" / environment / "flux-system" / "gotk-sync.yaml"
        paths = [doc["spec"].get("path") for doc in yaml.safe_load_all(sync.read_text()) if doc]
        assert f"./clusters/{environment}" in paths
    # The ConfigMap Flux substitutes from names each bucket the cluster stack made.
    text = (AWS / "bootstrap" / "main.tf").read_text(encoding="utf-8")
    workloads = _one(stack("cluster"), "variable", "bucket_workloads")["default"]
    for key in workloads:
        assert f'buckets["{key}"]' in text, f"platform-settings lacks the {key} bucket"


def test_the_registry_modules_are_configured_safely() -> None:
    """What checkov cannot see offline: the VPC's and the cluster's own hardening."""
    vpc = _one(stack("network"), "module", "vpc")
    assert vpc["enable_flow_log"] is True
    assert vpc["manage_default_security_group"] is True
    assert vpc["default_security_group_ingress"] == []
    assert vpc["default_security_group_egress"] == []
    assert vpc["map_public_ip_on_launch"] is False
    eks = _one(stack("cluster"), "module", "eks")
    assert {"api", "audit", "authenticator"} <= set(eks["enabled_log_types"])
    assert eks["encryption_config"]["resources"] == ["secrets"]
    assert eks["endpoint_private_access"] is True
    assert eks["endpoint_public_access"] == "${var.endpoint_public_access}"
    for group in eks["eks_managed_node_groups"].values():
        for mapping in group["block_device_mappings"].values():
            assert mapping["ebs"]["encrypted"] is True
    # Only dev may expose the API publicly, and never to the whole internet (validated).
    for environment in ("staging", "prod"):
        tfvars = rules.load(AWS / "environments" / environment / "cluster.tfvars", REPO)
        assert tfvars.get("endpoint_public_access", False) is False, environment
        assert tfvars.get("deletion_protection", True) is True, environment
