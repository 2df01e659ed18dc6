"""The broken-manifest corpus: each file breaks one semantic rule, and exactly it is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.kubernetes import Finding, Severity
from portal.review import semantics, semantics_slo
from portal.review.local_paths import RULE as LOCAL_PATH
from portal.review.local_paths import find_local_paths
from portal.review.semantics import evaluate_build

CORPUS = Path(__file__).parent / "semantic_corpus"
CONTAINER = "$.spec.template.spec.containers[0]"

# corpus entry -> (object, field, words the message must contain); the rule is the entry.
EXPECTED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "request-above-limit": (
        "Deployment/shop/api",
        f"{CONTAINER}.resources.requests.cpu",
        ("container 'app'", "cpu 0.2", "limit 150m"),
    ),
    "service-selects-nothing": ("Service/shop/api", "$.spec.selector", ("app=apii",)),
    "service-target-port": (
        "Service/shop/api",
        "$.spec.ports[0].targetPort",
        ("'web'", "Deployment/shop/api"),
    ),
    "probe-port": (
        "Deployment/shop/api",
        f"{CONTAINER}.readinessProbe.httpGet.port",
        ("readinessProbe", "'metrics'", "port names: http"),
    ),
    "hpa-target-missing": (
        "HorizontalPodAutoscaler/shop/api",
        "$.spec.scaleTargetRef",
        ("Deployment/api-v2",),
    ),
    "pdb-selects-nothing": ("PodDisruptionBudget/shop/api", "$.spec.selector", ("selector",)),
    "networkpolicy-selects-nothing": (
        "NetworkPolicy/shop/api",
        "$.spec.podSelector",
        ("podSelector",),
    ),
    "servicemonitor-selects-nothing": (
        "ServiceMonitor/shop/api",
        "$.spec.selector",
        ("no Service",),
    ),
    "servicemonitor-port": (
        "ServiceMonitor/shop/api",
        "$.spec.endpoints[0].port",
        ("'metrics'", "Service/shop/api"),
    ),
    "podmonitor-selects-nothing": ("PodMonitor/shop/api", "$.spec.selector", ("no pod",)),
    "slo-not-scraped": (
        'SLO "requests-availability"',
        "$.sli.events.error_query",
        ("http_requests_total", "Service/shop/api", "no ServiceMonitor or PodMonitor"),
    ),
    "local-path": (
        "pyproject.toml",
        "line 7",
        ("file:///Users/alice/src/shared-lib", "a file:// URL"),
    ),
}


def load(name: str) -> list[dict[str, Any]]:
    text = (CORPUS / f"{name}.yaml").read_text(encoding="utf-8")
    return [document for document in yaml.safe_load_all(text) if document]


def findings_of(name: str) -> list[Finding]:
    if name == "local-path":
        return find_local_paths(CORPUS / name)[0]
    findings, _ = evaluate_build(load(name), CORPUS / f"{name}.slo.yaml")
    return findings


def test_every_rule_has_a_corpus_entry() -> None:
    rules = {*semantics.RULES, semantics_slo.RULE.id, LOCAL_PATH.id}

    assert set(EXPECTED) == rules
    entries = {path.name.removesuffix(".yaml") for path in CORPUS.iterdir()}
    assert set(EXPECTED) <= entries


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_broken_manifest_is_caught_by_its_rule(name: str) -> None:
    obj, field, words = EXPECTED[name]

    (finding,) = findings_of(name)

    assert (finding.rule, finding.severity, finding.object, finding.path) == (
        name,
        Severity.ERROR,
        obj,
        field,
    )
    for word in words:
        assert word in finding.message, (word, finding.message)
    assert finding.reason


def test_the_slo_finding_points_at_the_slo_file() -> None:
    (finding,) = findings_of("slo-not-scraped")

    assert finding.source == "slo-not-scraped.slo.yaml"


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - {"local-path", "slo-not-scraped"}))
def test_findings_come_from_the_built_objects_alone(name: str) -> None:
    # Without any SLO file the manifest rules report the same single finding.
    findings, subject = evaluate_build(load(name), CORPUS / "no-such-slo.yaml")

    assert [finding.rule for finding in findings] == [name]
    assert subject.endswith("no SLO")
