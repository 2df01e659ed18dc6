"""sre/: autoscaling defaults match the templates; chaos experiments are complete and valid."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, require_tool

SRE = REPO / "sre"
TEMPLATES = sorted(p for p in (REPO / "templates").iterdir() if (p / "copier.yml").is_file())
EXPERIMENTS = sorted((SRE / "chaos").glob("*/*.yaml"))


def base_file(template: Path, name: str) -> str:
    return (template / "template" / "deploy" / "base" / f"{name}.yaml.jinja").read_text()


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_templates_render_the_autoscaling_defaults(template: Path) -> None:
    defaults = yaml.safe_load((SRE / "autoscaling" / "hpa-defaults.yaml").read_text())

    hpa = base_file(template, "hpa")
    target = re.search(r"averageUtilization: (\d+)", hpa)
    assert target and int(target.group(1)) == defaults["targetCPUUtilization"]
    deployment = base_file(template, "deployment")
    rolling = defaults["rollingUpdate"]
    assert f"maxSurge: {rolling['maxSurge']}" in deployment
    assert f"maxUnavailable: {rolling['maxUnavailable']}" in deployment
    assert not re.search(r"^\s*replicas:", deployment, re.MULTILINE)
    pdb = base_file(template, "pdb")
    assert f"maxUnavailable: {defaults['podDisruptionBudget']['maxUnavailable']}" in pdb


def test_every_template_has_its_chaos_experiments() -> None:
    covered = {path.name for path in (SRE / "chaos").iterdir() if path.is_dir()}
    assert covered == {template.name for template in TEMPLATES}
    for folder in covered:
        kinds = {yaml.safe_load(p.read_text())["kind"] for p in (SRE / "chaos" / folder).glob("*")}
        assert kinds == {"PodChaos", "NetworkChaos", "StressChaos"}, folder


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_experiment_targets_the_service_and_names_a_declared_slo(experiment: Path) -> None:
    document = yaml.safe_load(experiment.read_text())
    annotations = document["metadata"]["annotations"]
    slo_spec = REPO / "templates" / experiment.parent.name / "template" / "slo.yaml.jinja"

    assert document["apiVersion"] == "chaos-mesh.org/v1alpha1"
    assert document["metadata"]["namespace"] == "SERVICE"
    selector = document["spec"]["selector"]
    assert selector["namespaces"] == ["SERVICE"]
    assert selector["labelSelectors"] == {"app.kubernetes.io/name": "SERVICE"}
    assert re.fullmatch(r"\d+m", document["spec"]["duration"])
    assert f'name: "{annotations["portal.platform/slo"]}"' in slo_spec.read_text()
    assert annotations["portal.platform/expectation"].strip()


@pytest.mark.integration
def test_steady_state_checks_are_valid_promql(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = [
        {
            "record": f"chaos:steady_state:{index}",
            "expr": yaml.safe_load(path.read_text())["metadata"]["annotations"][
                "portal.platform/steady-state"
            ],
        }
        for index, path in enumerate(EXPERIMENTS)
    ]
    rule_file = tmp_path / "steady.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "chaos", "rules": rules}]}))

    checked = subprocess.run(
        [str(promtool), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
