"""Grafana dashboards of the GitOps seed: PromQL that promtool accepts, on metrics that exist.

Every query of every dashboard (panel targets and variable queries) is checked twice: by
promtool, as a recording rule in a temporary rule file (Grafana's variables replaced by
valid values first), and against the metric names something in the platform emits. Those
names are collected from the source (``tests/emitted_metrics.py``).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from portal.integrations.kubernetes import kustomize_build
from tests.conftest import REPO, TEST_DATA, require_tool
from tests.emitted_metrics import (
    emitted_by_code,
    emitted_by_slo_compiler,
    exporter_metrics,
    known_metrics,
)

SEED = REPO / "gitops-repo"
MONITORING = SEED / "infrastructure" / "base" / "monitoring"
DASHBOARD_DIR = MONITORING / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
DATA = TEST_DATA / "dashboards"
BROKEN = DATA / "misspelt-metric.json"

# Grafana's built-in variables that stand for a range; any valid duration checks the syntax.
DURATION_VARIABLES = {"__rate_interval", "__interval", "__range", "__auto"}
VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\[\[(\w+)\]\]|\$(\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.+),\s*[A-Za-z_]\w*\s*\)\s*$", re.S)
QUERY_RESULT = re.compile(r"^\s*query_result\((?P<expr>.+)\)\s*$", re.S)


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a dashboard and where it is (for messages)."""

    dashboard: str
    where: str
    expr: str


# Reading dashboards ---------------------------------------------------------------------


def load(path: Path) -> dict[str, Any]:
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        pytest.fail(f"{path.name}:{error.lineno}: not JSON: {error.msg}")
    assert isinstance(board, dict), f"{path.name}: a dashboard is a JSON object"
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # the panels of a collapsed row


def variables(board: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = board.get("templating", {}).get("list", [])
    return found


def variable_expr(variable: dict[str, Any]) -> str | None:
    """The PromQL inside a query variable (``label_values(sel, l)``, ``query_result(e)``)."""
    query = variable.get("query")
    text = query.get("query", "") if isinstance(query, dict) else query or ""
    for pattern, group in ((LABEL_VALUES, "selector"), (QUERY_RESULT, "expr")):
        match = pattern.match(text)
        if match:
            return match.group(group)
    return None


def queries(path: Path) -> list[Query]:
    board = load(path)
    found = []
    for panel in panels(board):
        for target in panel.get("targets", []):
            if target.get("expr"):
                where = f"panel {panel.get('title', '')!r} ({target.get('refId', '?')})"
                found.append(Query(path.name, where, target["expr"]))
    for variable in variables(board):
        if variable.get("type") == "query" and (expr := variable_expr(variable)):
            found.append(Query(path.name, f"variable ${variable['name']}", expr))
    return found


def substitute(query: Query, board: dict[str, Any]) -> tuple[str, list[str]]:
    """Replace Grafana variables by valid values; return the text and unknown variables."""
    defined = {v["name"]: v.get("type") for v in variables(board)}
    unknown: list[str] = []

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name in DURATION_VARIABLES or defined.get(name) == "interval":
            return "5m"
        if name == "__range_s":
            return "300"
        if name not in defined:
            unknown.append(name)
        return "x"

    return VARIABLE.sub(value, query.expr), unknown


# The checks ------------------------------------------------------------------------------


def promtool_problems(checked: list[tuple[Query, str]], tmp_path: Path) -> list[str]:
    """promtool's complaints about each expression, as a recording rule of its own group."""
    groups = [
        {
            "name": f"{query.dashboard} #{index}: {query.where}",
            "rules": [{"record": "dashboard:query", "expr": expr}],
        }
        for index, (query, expr) in enumerate(checked)
    ]
    rules = tmp_path / "dashboards.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [str(require_tool("promtool")), "check", "rules", "--", str(rules)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 0:
        return []
    output = result.stdout + result.stderr
    return [line for line in output.splitlines() if "group " in line] or [output]


def metric_names(node: Any) -> Iterator[str]:
    """Every metric name a parsed PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        yield from (m.value for m in node.matchers.matchers if m.name == "__name__")
        return
    children = {
        promql_parser.MatrixSelector: ("vector_selector",),
        promql_parser.BinaryExpr: ("lhs", "rhs"),
        promql_parser.AggregateExpr: ("expr", "param"),
        promql_parser.ParenExpr: ("expr",),
        promql_parser.UnaryExpr: ("expr",),
        promql_parser.SubqueryExpr: ("expr",),
    }
    if isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from metric_names(arg)
        return
    for kind, attributes in children.items():
        if isinstance(node, kind):
            for attribute in attributes:
                child = getattr(node, attribute)
                if child is not None:
                    yield from metric_names(child)


def dashboard_problems(paths: list[Path], tmp_path: Path) -> list[str]:
    """Everything wrong with the queries of these dashboards, one line per problem."""
    problems: list[str] = []
    checked: list[tuple[Query, str]] = []
    for path in paths:
        board = load(path)
        for query in queries(path):
            expr, unknown = substitute(query, board)
            problems += [f"{query.dashboard}: {query.where}: undefined ${v}" for v in unknown]
            checked.append((query, expr))
    problems += promtool_problems(checked, tmp_path)
    known = known_metrics()
    for query, expr in checked:
        try:
            names = set(metric_names(promql_parser.parse(expr)))
        except (ValueError, RuntimeError) as error:
            problems.append(f"{query.dashboard}: {query.where}: {error}")
            continue
        problems += [
            f"{query.dashboard}: {query.where}: no exporter or template emits {name}"
            for name in sorted(names - known)
        ]
    return problems


# Tests -----------------------------------------------------------------------------------


def test_the_names_are_collected_from_the_source() -> None:
    code = emitted_by_code()
    # Each template's app and the portal define metrics; the client adds the suffixes.
    assert {Path(name).parts[1] for name in code if name.startswith("templates/")} >= {
        "rag-llm-service",
        "aiops-detector",
        "air-quality-monitor",
    }
    assert "portal/metrics.py" in code
    rag = code["templates/rag-llm-service/template/app/metrics.py"]
    assert {n for n in rag if n.startswith("llm_time_to_first_token_seconds")} >= {
        "llm_time_to_first_token_seconds_bucket",
        "llm_time_to_first_token_seconds_count",
    }
    slo = emitted_by_slo_compiler()
    assert all(name.startswith(("slo:", "sloth_")) for name in slo)
    assert {n for n in slo if n.startswith("slo:sli_error:ratio_rate")} >= {
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate30d",
    }


@pytest.mark.integration
def test_every_dashboard_query_parses_and_uses_emitted_metrics(tmp_path: Path) -> None:
    assert len(DASHBOARDS) >= 5
    assert dashboard_problems(DASHBOARDS, tmp_path) == []


@pytest.mark.integration
def test_a_misspelt_metric_fails_the_check(tmp_path: Path) -> None:
    problems = dashboard_problems([BROKEN], tmp_path)
    assert problems == [
        f"{BROKEN.name}: panel 'Tokens per second by type' (A): "
        "no exporter or template emits llm_token_total"
    ]


@pytest.mark.integration
def test_a_syntax_error_or_an_undefined_variable_fails_the_check(tmp_path: Path) -> None:
    board = load(DASHBOARD_DIR / "llm.json")
    panel = next(p for p in panels(board) if p.get("targets"))
    target = panel["targets"][0]
    target["expr"] = target["expr"].replace("$namespace", "$namspace", 1).rstrip(")")
    broken = tmp_path / "llm.json"
    broken.write_text(json.dumps(board), encoding="utf-8")
    problems = dashboard_problems([broken], tmp_path)
    assert any("undefined $namspace" in p for p in problems), problems
    first = f"{broken.name} #0: panel {panel['title']!r}"
    assert any(first in p and "unclosed left parenthesis" in p for p in problems), problems


def test_each_subject_has_its_dashboard_on_the_names_its_source_emits() -> None:
    used = {
        path.stem: {
            name
            for query in queries(path)
            for name in metric_names(promql_parser.parse(substitute(query, load(path))[0]))
        }
        for path in DASHBOARDS
    }
    code = emitted_by_code()
    llm = {n for n in code["templates/rag-llm-service/template/app/metrics.py"] if "llm_" in n}
    # Requests, tokens, latency and time to first token: every LLM family has a panel.
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in llm}
    assert {f for f in families if not any(u.startswith(f) for u in used["llm"])} == set()
    assert used["aiops"] & code["templates/aiops-detector/template/app/metrics.py"]
    assert used["portal"] & code["portal/metrics.py"]
    assert used["slos"] and used["slos"] <= emitted_by_slo_compiler() | exporter_metrics()
    assert used["resources"] and used["resources"] <= exporter_metrics()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_are_portable(path: Path) -> None:
    board = load(path)
    assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]), f"{path.name}: uid {board['uid']!r}"
    assert board["title"] and board["schemaVersion"] >= 36
    names = [v["name"] for v in variables(board)]
    assert names[0] == "datasource" and len(names) == len(set(names))
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    # The data source is the variable, never one cluster's data source uid.
    for panel in panels(board):
        for holder in [panel, *panel.get("targets", [])]:
            if "datasource" in holder and panel["type"] != "row":
                assert holder["datasource"]["uid"] == "${datasource}", (path.name, panel["title"])


@pytest.mark.integration
def test_every_dashboard_ships_as_a_configmap_the_grafana_sidecar_loads() -> None:
    objects = kustomize_build(MONITORING, kubectl=require_tool("kubectl"))
    sidecar = next(o for o in objects if o["metadata"]["name"] == "kube-prometheus-stack")
    settings = sidecar["spec"]["values"]["grafana"]["sidecar"]["dashboards"]
    assert settings["enabled"] is True and settings["searchNamespace"] == "ALL"
    maps = [
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and o["metadata"].get("labels", {}).get(settings["label"]) == settings["labelValue"]
    ]
    shipped = {key: text for o in maps for key, text in o["data"].items()}
    assert sorted(shipped) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert shipped[path.name] == path.read_text(encoding="utf-8")
    for configmap in maps:
        # No hash suffix: a renamed ConfigMap would briefly show the dashboard twice.
        [key] = configmap["data"]
        assert configmap["metadata"]["name"] == f"dashboard-{Path(key).stem}"
        assert configmap["metadata"]["namespace"] == "monitoring"
        assert configmap["metadata"]["annotations"][settings["folderAnnotation"]] == "Platform"
