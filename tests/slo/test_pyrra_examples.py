"""Pyrra's own example ServiceLevelObjectives (vendored) convert, for any window they use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.integrations.promtool import PromtoolCli
from portal.slo.compiler.generate import GenerateOptions, generate_sources
from portal.slo.compiler.promql import format_duration, parse_duration
from tests.conftest import CONFORMANCE
from tests.slo.support import assert_promtool_passes, parsed

PYRRA = CONFORMANCE / "pyrra"
FILES = sorted(PYRRA.rglob("*.yaml"))


def objects(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def test_every_servicelevelobjective_of_pyrras_examples_is_vendored() -> None:
    # 56 files, nginx.yaml holds two objects; the windows are the ones Pyrra's users write.
    assert len(FILES) == 56
    windows = [obj["spec"]["window"] for path in FILES for obj in objects(path)]
    assert len(windows) == 57
    assert {window: windows.count(window) for window in set(windows)} == {
        "2w": 46,
        "7d": 5,
        "1w": 2,
        "4w": 4,
    }


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(PYRRA)))
def test_pyrra_example_converts(path: Path) -> None:
    outputs = generate_sources({str(path): path.read_text(encoding="utf-8")})

    groups = {group["name"]: group for document in parsed(outputs) for group in document["groups"]}
    for obj in objects(path):
        name = obj["metadata"]["name"]
        # The service is the namespace, else the name (caddy's example has no namespace).
        slo_id = f"{obj['metadata'].get('namespace', name)}-{name}"
        period = format_duration(parse_duration(obj["spec"]["window"]))
        sli = groups[f"sloth-slo-sli-recordings-{slo_id}"]["rules"]
        # The last SLI recording is the period's, named after the file's own window.
        assert sli[-1]["record"] == f"slo:sli_error:ratio_rate{period}"
        alerts = groups[f"sloth-slo-alerts-{slo_id}"]["rules"]
        assert [alert["labels"]["sloth_severity"] for alert in alerts] == ["page", "ticket"]
        meta = {
            rule["record"]: rule for rule in groups[f"sloth-slo-meta-recordings-{slo_id}"]["rules"]
        }
        days = parse_duration(obj["spec"]["window"]) / 86_400_000
        assert meta["slo:time_period:days"]["expr"] == f"vector({days:g})"


def test_a_two_week_example_alerts_with_pyrras_windows_and_factors() -> None:
    path = PYRRA / "examples" / "kubernetes" / "manifests" / "slos"
    path /= "slo-apiserver-read-response-errors.yaml"
    (document,) = parsed(generate_sources({path.name: path.read_text(encoding="utf-8")}))
    alerts = {
        rule["labels"]["sloth_severity"]: rule["expr"] for rule in document["groups"][2]["rules"]
    }

    # Pyrra's figures for 2w (its own rules_test.go, case "operator-ratio"): 3m/30m at 14,
    # 15m/3h at 7 (page); 1h/12h at 2, 3h/2d at 1 (ticket). Target 99%: budget 0.01.
    budget = "0.01"
    for short, long, factor in (("3m", "30m", 14), ("15m", "3h", 7)):
        assert f"ratio_rate{short}{{" in alerts["page"]
        assert f"ratio_rate{long}{{" in alerts["page"]
        assert f"({factor} * {budget})" in alerts["page"]
    for short, long, factor in (("1h", "12h", 2), ("3h", "2d", 1)):
        assert f"ratio_rate{short}{{" in alerts["ticket"]
        assert f"ratio_rate{long}{{" in alerts["ticket"]
        assert f"({factor} * {budget})" in alerts["ticket"]


@pytest.mark.integration
def test_converted_pyrra_examples_pass_promtool(promtool: PromtoolCli, tmp_path: Path) -> None:
    # One file per window Pyrra's examples use besides the built-in 4w: 2w, 7d and 1w.
    chosen = [
        PYRRA
        / "examples"
        / "kubernetes"
        / "manifests"
        / "slos"
        / "slo-coredns-response-errors.yaml",
        PYRRA / "examples" / "pyrra-connect-latency.yaml",  # 2w, native histogram
        PYRRA / "examples" / "prometheus-probe-success.yaml",  # 7d
        PYRRA / "examples" / "pyrra-filesystem-errors.yaml",  # 1w
        PYRRA / "examples" / "nginx.yaml",  # 4w: Sloth's windows
    ]
    for path in chosen:
        outputs = generate_sources(
            {path.name: path.read_text(encoding="utf-8")}, GenerateOptions(tests=True)
        )
        assert_promtool_passes(outputs, tmp_path / path.stem, promtool)
