"""checkov in its own environment: report parsing, and the real tool on rendered manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

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
