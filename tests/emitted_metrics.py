"""The metric names the platform emits, collected from the source (for tests/test_dashboards.py).

The ``prometheus_client`` metrics the templates' apps and the portal define (instantiated in a
throwaway registry, so the names are the ones the client library exposes: ``_total``,
``_bucket``...), the recordings the SLO compiler generates, and the exporters' metric names
kept in ``tests/data/dashboards/exporter-metrics.yaml``.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

import jinja2
import yaml
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary

from portal.slo.compiler.generate import generate, generate_sources
from tests.conftest import REPO, TEST_DATA

DATA = TEST_DATA / "dashboards"
COLLECTORS: dict[str, Any] = {
    "Counter": Counter,
    "Gauge": Gauge,
    "Histogram": Histogram,
    "Summary": Summary,
    "Info": Info,
    "Enum": Enum,
}
NAME_ARGUMENTS = {"labelnames", "namespace", "subsystem", "unit", "states"}


def prometheus_client_metrics(path: Path) -> set[str]:
    """Sample names of the prometheus_client metrics a Python file defines."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
        for alias in node.names
        if alias.name in COLLECTORS
    }
    registry = CollectorRegistry()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in imported or not node.args:
            continue
        # Name, documentation, label names and what else shapes the names; buckets do not.
        args = [ast.literal_eval(arg) for arg in node.args[:3]]
        kwargs = {
            k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg in NAME_ARGUMENTS
        }
        metric = COLLECTORS[node.func.id](*args, **kwargs, registry=registry)
        labels = kwargs.get("labelnames", args[2] if len(args) > 2 else ())
        if labels:
            metric = metric.labels(*["x"] * len(labels))
        if isinstance(metric, Info):
            metric.info({})
    return {sample.name for family in registry.collect() for sample in family.samples}


@functools.cache
def emitted_by_code() -> dict[str, frozenset[str]]:
    """Metric names per emitting file: every template app module and the portal's metrics."""
    files = [*sorted(REPO.glob("templates/*/template/app/**/*.py")), REPO / "portal/metrics.py"]
    found = {str(p.relative_to(REPO)): frozenset(prometheus_client_metrics(p)) for p in files}
    return {name: names for name, names in found.items() if names}


def recorded_names(rule_text: str) -> set[str]:
    """Recording names of a generated rule file."""
    groups = yaml.safe_load(rule_text)["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


@functools.cache
def emitted_by_slo_compiler() -> frozenset[str]:
    """What the SLO compiler records for the platform's SLOs and every template's slo.yaml."""
    names = {n for out in generate([REPO / "sre" / "slos"]) for n in recorded_names(out.text)}
    for spec in sorted(REPO.glob("templates/*/template/slo.yaml.jinja")):
        questions = yaml.safe_load((spec.parent.parent / "copier.yml").read_text(encoding="utf-8"))
        answers = {
            key: question["default"]
            for key, question in questions.items()
            if isinstance(question, dict) and "default" in question
        }
        answers |= {"name": "demo", "owner": "ml-apps", "lifecycle": "production"}
        text = jinja2.Template(spec.read_text(encoding="utf-8")).render(answers)
        for out in generate_sources({str(spec): text}):
            names |= recorded_names(out.text)
    return frozenset(names)


@functools.cache
def exporter_metrics() -> frozenset[str]:
    """The exporters' metric names kept in the test data (with where each list comes from)."""
    lists = yaml.safe_load((DATA / "exporter-metrics.yaml").read_text(encoding="utf-8"))
    return frozenset(name for names in lists.values() for name in names)


@functools.cache
def known_metrics() -> frozenset[str]:
    """Every metric name a dashboard may use."""
    code = {name for names in emitted_by_code().values() for name in names}
    return frozenset(code | emitted_by_slo_compiler() | exporter_metrics())
