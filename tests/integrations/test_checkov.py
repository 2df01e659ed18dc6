"""checkov in its own environment: report parsing, and the real tool on rendered manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from portal.config import Settings
from portal.integrations.checkov import (
    CheckovCli,
    CheckovError,
    CheckovFailure,
    find_checkov,
    parse_report,
)

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "team-a"},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "registry.example.com/web:1.0.0",
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        },
    },
}


def test_report_of_one_framework_lists_failed_checks_per_file_and_object() -> None:
    report = {
        "check_type": "kubernetes",
        "results": {
            "passed_checks": [{"check_id": "CKV_K8S_1"}],
            "failed_checks": [
                {
                    "check_id": "CKV_K8S_16",
                    "check_name": "Container should not be privileged",
                    "file_path": "/manifests/prod.yaml",
                    "resource": "Deployment.team-a.web",
                    "check_result": {"evaluated_keys": ["spec/template/spec/containers"]},
                }
            ],
        },
        "summary": {"failed": 1},
    }

    assert parse_report(json.dumps(report)) == [
        CheckovFailure(
            check_id="CKV_K8S_16",
            check_name="Container should not be privileged",
            file="prod.yaml",
            resource="Deployment.team-a.web",
            keys=("spec/template/spec/containers",),
        )
    ]
    # Several frameworks give a list of such reports.
    assert len(parse_report(json.dumps([report, report]))) == 2


def test_report_without_resources_has_no_failures_and_garbage_is_an_error() -> None:
    assert parse_report('{"passed": 0, "failed": 0, "resource_count": 0}') == []
    with pytest.raises(CheckovError, match="did not print a JSON report"):
        parse_report("Traceback (most recent call last):")
    with pytest.raises(CheckovError, match="unexpected shape"):
        parse_report("[1, 2]")


def test_missing_executable_is_none(tmp_path: Path) -> None:
    assert find_checkov(tmp_path / "checkov") is None


def executable(path: Path) -> Path:
    """A file that passes for an executable (only found, never run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_checkov_is_the_configured_one_then_make_tools_then_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    made = executable(checkout / ".tools" / "checkov" / "bin" / "checkov")
    on_path = executable(tmp_path / "bin" / "checkov")
    configured = executable(checkout / "elsewhere" / "checkov")
    monkeypatch.setenv("PATH", str(on_path.parent))
    monkeypatch.chdir(checkout)

    assert find_checkov(Path("elsewhere/checkov")) == configured  # absolute: runs elsewhere
    assert find_checkov(Path("missing/checkov")) is None  # a configured path is not a hint
    assert find_checkov() == made  # `portal serve` in the checkout `make tools` ran in
    made.unlink()
    assert find_checkov() == on_path
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_checkov() is None


@pytest.mark.integration
def test_serve_by_hand_finds_make_tools_checkov_without_a_setting(
    checkov_executable: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout where `make tools` ran, and no PORTAL_CHECKOV_PATH (only make exports it).
    checkout = tmp_path / "checkout"
    (checkout / ".tools" / "checkov").mkdir(parents=True)
    (checkout / ".tools" / "checkov" / "bin").symlink_to(checkov_executable.parent)
    monkeypatch.delenv("PORTAL_CHECKOV_PATH", raising=False)
    monkeypatch.chdir(checkout)

    settings = Settings()
    assert settings.checkov_path is None
    executable = find_checkov(settings.checkov_path)  # what the review checks are built with
    assert executable == checkout / ".tools" / "checkov" / "bin" / "checkov"
    # checkov runs in a scratch folder: a path relative to the checkout would not start.
    failures = CheckovCli(executable).scan({"dev.yaml": yaml.safe_dump(DEPLOYMENT)})
    assert "CKV_K8S_16" in {failure.check_id for failure in failures}


def test_names_must_be_plain_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain file name"):
        CheckovCli(tmp_path / "checkov").scan({"../escape.yaml": "kind: x"})


@pytest.mark.integration
def test_real_checkov_flags_a_privileged_container_offline(checkov_executable: Path) -> None:
    failures = CheckovCli(checkov_executable).scan(
        {"dev.yaml": yaml.safe_dump(DEPLOYMENT), "prod.yaml": yaml.safe_dump(DEPLOYMENT)}
    )

    privileged = [failure for failure in failures if failure.check_id == "CKV_K8S_16"]
    assert sorted(failure.file for failure in privileged) == ["dev.yaml", "prod.yaml"]
    assert {failure.resource for failure in privileged} == {"Deployment.team-a.web"}
    assert privileged[0].check_name == "Container should not be privileged"


@pytest.mark.integration
def test_real_checkov_honours_waived_checks(checkov_executable: Path) -> None:
    waived = CheckovCli(checkov_executable, skip_checks=["CKV_K8S_16", "CKV_K8S_43"])
    failures = waived.scan({"dev.yaml": yaml.safe_dump(DEPLOYMENT)})

    ids = {failure.check_id for failure in failures}
    assert "CKV_K8S_16" not in ids
    assert "CKV_K8S_43" not in ids
    assert "CKV_K8S_20" in ids  # allowPrivilegeEscalation is still reported


def test_a_failing_executable_is_a_checkov_error(tmp_path: Path) -> None:
    fake = tmp_path / "checkov"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 2\n", encoding="utf-8")
    fake.chmod(0o755)

    with pytest.raises(CheckovError, match="exited with 2: boom"):
        CheckovCli(fake).scan({"dev.yaml": "kind: Namespace"})
