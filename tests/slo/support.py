"""Helpers shared by the SLO tests: Sloth's templates, semantic comparison, promtool runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from portal.integrations.promtool import Promtool
from portal.slo.compiler.generate import GeneratedFile, write_outputs
from tests.conftest import CONFORMANCE, REPO

SLOTH = CONFORMANCE / "sloth"
SRE_SLOS = REPO / "sre" / "slos"
SLOTH_VERSION = "v0.16.0"


def render_template(path: Path, version: str = SLOTH_VERSION) -> list[dict[str, Any]]:
    """Render one of Sloth's ``.tpl`` outputs (README: version, then unescape ``{{``)."""
    text = path.read_text(encoding="utf-8").replace("{{ .version }}", version)
    text = text.replace('{{"{{', "{{").replace('}}"}}', "}}")
    return [document for document in yaml.safe_load_all(text) if document]


def normalise(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Groups and rules in order, with each ``expr`` compared up to whitespace."""
    groups = []
    for group in document["groups"]:
        rules = []
        for rule in group["rules"]:
            rules.append(
                {
                    "kind": "record" if "record" in rule else "alert",
                    "name": rule.get("record") or rule.get("alert"),
                    "expr": " ".join(str(rule["expr"]).split()),
                    "labels": rule.get("labels", {}),
                    "annotations": rule.get("annotations", {}),
                    "keys": sorted(rule),
                }
            )
        groups.append({"name": group["name"], "interval": group.get("interval"), "rules": rules})
    return groups


def parsed(outputs: Sequence[GeneratedFile]) -> list[dict[str, Any]]:
    """Parse generated rule files; each must hold exactly one YAML document."""
    documents = []
    for output in outputs:
        if output.kind != "rules":
            continue
        loaded = list(yaml.safe_load_all(output.text))
        assert len(loaded) == 1, f"{output.name} holds {len(loaded)} YAML documents"
        documents.append(loaded[0])
    return documents


def assert_promtool_passes(
    outputs: Sequence[GeneratedFile],
    folder: Path,
    promtool: Promtool,
    *,
    lint_clean: bool = True,
) -> None:
    """Write the outputs, then ``check rules`` every rule file and ``test rules`` every test.

    ``lint_clean`` also refuses promtool's non-fatal lint report (duplicate rules).
    """
    assert any(output.kind == "test" for output in outputs), "no promtool tests generated"
    for output, path in zip(outputs, write_outputs(outputs, folder), strict=True):
        result = (promtool.check_rules if output.kind == "rules" else promtool.test_rules)(path)
        assert result.ok, f"{output.name}:\n{result.output}"
        if lint_clean:
            assert "FAILED" not in result.output, f"{output.name}:\n{result.output}"
