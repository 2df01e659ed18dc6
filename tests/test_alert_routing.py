"""Alertmanager routing of the seed (kube-prometheus-stack values), checked with amtool.

SLO alerts page or open a ticket by Sloth's ``sloth_severity``, for the catalog Group the
SLO names as ``owner``. The alerts routed here are the ones the portal's SLO compiler
generates, with the labels promtool shows they carry when they fire.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import kustomize_build
from portal.slo.compiler.generate import GenerateOptions, generate, write_outputs
from tests.conftest import REPO, require_integration, require_tool

SEED = REPO / "gitops-repo"
ENVIRONMENTS = ["dev", "staging", "prod"]
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Receiver settings that would hold a credential; only their *_file forms are allowed.
CREDENTIAL_KEYS = {
    "api_url",
    "api_key",
    "auth_password",
    "bot_token",
    "password",
    "routing_key",
    "service_key",
    "token",
    "url",
}


def amtool() -> Path:
    found = shutil.which("amtool")
    if found is None:
        require_integration("amtool not found on PATH (Debian package: prometheus-alertmanager)")
    return Path(found)


@functools.cache
def release_values(env: str) -> dict[str, Any]:
    objects = kustomize_build(SEED / "infrastructure" / env, kubectl=require_tool("kubectl"))
    release = next(
        o
        for o in objects
        if o["kind"] == "HelmRelease" and o["metadata"]["name"] == "kube-prometheus-stack"
    )
    values: dict[str, Any] = release["spec"]["values"]
    return values


def config_file(env: str, tmp_path: Path) -> Path:
    path = tmp_path / f"alertmanager-{env}.yaml"
    config = release_values(env)["alertmanager"]["config"]
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def route(config: Path, labels: dict[str, str]) -> str:
    """The receiver amtool's routing test picks for an alert with these labels."""
    for name, value in labels.items():
        assert LABEL.match(name) and "\n" not in value, (name, value)
    result = subprocess.run(
        [str(amtool()), "config", "routes", "test", f"--config.file={config}", "--"]
        + [f"{name}={value}" for name, value in labels.items()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.integration
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_alertmanager_config_is_valid_in_every_environment(env: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [str(amtool()), "check-config", "--", str(config_file(env, tmp_path))],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def catalog_teams() -> list[str]:
    teams = []
    for path in sorted((REPO / "catalog").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc and doc.get("kind") == "Group" and doc.get("spec", {}).get("type") == "team":
                teams.append(doc["metadata"]["name"])
    return teams


@pytest.mark.integration
def test_every_catalog_team_is_paged_and_ticketed_on_its_own_receivers(tmp_path: Path) -> None:
    config = config_file("prod", tmp_path)
    teams = catalog_teams()
    assert len(teams) >= 2
    for team in teams:
        for severity in ("page", "ticket"):
            labels = {"sloth_severity": severity, "owner": team, "alertname": "X"}
            assert route(config, labels) == f"{severity}-{team}"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        # An owner without its own route still reaches SRE, at the alert's severity.
        ({"sloth_severity": "page", "owner": "no-such-team"}, "page-sre"),
        ({"sloth_severity": "ticket"}, "ticket-sre"),
        # The chart's cluster rules and the AIOps template's alerts: no Sloth labels.
        ({"alertname": "KubePodCrashLooping", "severity": "critical"}, "page-sre"),
        ({"alertname": "DemoAnomalyWarning", "severity": "warning"}, "ticket-sre"),
        ({"alertname": "Watchdog", "severity": "none"}, "null"),
    ],
)
def test_alerts_without_a_team_route_still_reach_someone(
    labels: dict[str, str], receiver: str, tmp_path: Path
) -> None:
    assert route(config_file("prod", tmp_path), labels) == receiver


def fired_alerts(folder: Path) -> Iterator[dict[str, str]]:
    """The labels of the alerts the generated promtool tests expect (and promtool confirms)."""
    for test in sorted(folder.glob("*.test.yaml")):
        for case in yaml.safe_load(test.read_text(encoding="utf-8"))["tests"]:
            for alert in case.get("alert_rule_test", []):
                for expected in alert.get("exp_alerts", []):
                    yield {"alertname": alert["alertname"], **expected["exp_labels"]}


@pytest.mark.integration
def test_the_slo_alerts_the_portal_generates_reach_their_owner(tmp_path: Path) -> None:
    out = tmp_path / "rules"
    write_outputs(generate([REPO / "sre" / "slos"], GenerateOptions(tests=True)), out)
    tests = sorted(str(p) for p in out.glob("*.test.yaml"))
    checked = subprocess.run(
        [str(require_tool("promtool")), "test", "rules", "--", *tests],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = config_file("prod", tmp_path)
    alerts = list(fired_alerts(out))
    assert {a["sloth_severity"] for a in alerts} == {"page", "ticket"}
    for alert in alerts:
        # The compiler's alerts keep the SLO's labels, so the owner rides along.
        assert alert["owner"] in catalog_teams(), alert
        assert route(config, alert) == f"{alert['sloth_severity']}-{alert['owner']}", alert


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}", value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.integration
def test_receivers_read_their_credentials_from_a_mounted_secret(env: str) -> None:
    alertmanager = release_values(env)["alertmanager"]
    mounted = alertmanager["alertmanagerSpec"]["secrets"]
    files = []
    for where, value in walk(alertmanager["config"]["receivers"]):
        key = where.rsplit(".", 1)[-1]
        assert key not in CREDENTIAL_KEYS, f"{where}: a literal credential"
        if key.endswith("_file"):
            files.append(value)
    assert files
    for file in files:
        secret = Path(file).relative_to("/etc/alertmanager/secrets").parts[0]
        assert secret in mounted, f"{file}: Secret {secret} is not mounted"
