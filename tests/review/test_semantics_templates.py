"""The semantic checks on real renders: silent on the bundled templates, loud on issue 12's cases.

Each template is rendered through the portal's own path (published git repository, Copier in
the worker, the portal's answer validation) and checked by ``run_manifest_checks`` with the
real ``kubectl kustomize``, as a change is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portal.cost.model import Prices
from portal.integrations import copier as copier_integration
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.scaffold.registry.bundled import discover, publish
from tests.conftest import require_tool
from tests.templates.rendering import TEMPLATES_DIR, Rendered, load, render_service

pytestmark = pytest.mark.integration
TEMPLATES = {info.name: info for info in discover(TEMPLATES_DIR)}
CONTAINER = "$.spec.template.spec.containers[0]"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("data")
    copier_integration.shutdown()


def rendered(name: str, data_dir: Path, root: Path, **answers: object) -> Rendered:
    info = TEMPLATES[name]
    defaults = {
        question.name: question.placeholder for question in info.questions if question.required
    }
    return render_service(info, publish(info, data_dir), defaults | answers, root)


def check(service: Rendered, data_dir: Path) -> dict[str, CheckResult]:
    tools = CheckTools(kubectl=require_tool("kubectl"), machine_roots=(str(data_dir),))
    results = run_manifest_checks(
        service.dest, service.environments, lambda _: True, Prices(), tools
    )
    return {result.name: result for result in results}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_default_renders_have_no_semantic_findings(
    name: str, data_dir: Path, tmp_path: Path
) -> None:
    service = rendered(name, data_dir, tmp_path)

    results = check(service, data_dir)

    for environment in service.environments:
        result = results[f"semantics ({environment})"]
        assert (result.status, result.findings) == (CheckStatus.PASSED, []), result.summary
    # Copier's record of where the template came from is its URL (issue 12, "stable template
    # source"), never the portal's disk: no committed file holds a machine path.
    source = str(load(service.dest / ".copier-answers.yml")["_src_path"])
    assert source.startswith("http://") and str(data_dir) not in source
    files = results["semantics"]
    assert (files.status, files.findings) == (CheckStatus.PASSED, []), files.summary


def test_issue_12_request_above_limit_and_unscraped_slo_fail_end_to_end(
    data_dir: Path, tmp_path: Path
) -> None:
    # Metrics turned off: no ServiceMonitor is rendered, the SLO still reads http_requests_total.
    service = rendered("fastapi-service", data_dir, tmp_path, enable_metrics=False)
    # Limits below the requests, as an edit of the manifest can make them whatever the form says.
    deployment = service.dest / "deploy" / "base" / "deployment.yaml"
    manifest = yaml.safe_load(deployment.read_text(encoding="utf-8"))
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "50m", "memory": "64Mi"},
    }
    deployment.write_text(yaml.safe_dump(manifest, sort_keys=False), encoding="utf-8")

    results = check(service, data_dir)

    name = service.answers["name"]
    for environment in service.environments:
        for other in ("kustomize", "schema", "policy", "cost"):  # what said "passed" before
            assert results[f"{other} ({environment})"].status == CheckStatus.PASSED
        result = results[f"semantics ({environment})"]
        assert result.status == CheckStatus.FAILED
        assert [(f.rule, f.object, f.path) for f in result.findings] == [
            (
                "request-above-limit",
                f"Deployment/{name}/{name}",
                f"{CONTAINER}.resources.requests.cpu",
            ),
            (
                "request-above-limit",
                f"Deployment/{name}/{name}",
                f"{CONTAINER}.resources.requests.memory",
            ),
            ("slo-not-scraped", 'SLO "requests-availability"', "$.sli.events.error_query"),
        ]
        cpu, memory, slo = (finding.message for finding in result.findings)
        assert "requests cpu 100m, above its limit 50m" in cpu
        assert "requests memory 128Mi, above its limit 64Mi" in memory
        assert f'reads http_requests_total{{namespace="{name}",service="{name}"}}' in slo
        assert f"of Service/{name}/{name}, but no ServiceMonitor or PodMonitor" in slo
