"""The rules file: the shipped one and its example load, every problem names its line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rules import RulesError, load_config, load_rules_file

from .remediation_cases import (
    RULES,
)

SERVICE_ROOT = Path(__file__).resolve().parents[1]


# --- the rules file ------------------------------------------------------------------------


def test_the_rules_file_in_deploy_and_its_documented_example_are_valid() -> None:
    """deploy/base/remediation.yaml loads, and so do the rules of its commented example."""
    path = SERVICE_ROOT / "deploy" / "base" / "remediation.yaml"
    config = load_rules_file(path)
    text = path.read_text(encoding="utf-8")
    assert config.rules == []
    example = text.split("# --- example ---\n")[1].split("# --- end of example ---")[0]
    rules = "\n".join(line.removeprefix("# ") for line in example.splitlines())
    names = [rule.name for rule in load_config(rules).rules]
    assert names == [
        "checkout-latency-scale-out",
        "checkout-errors-rollback",
        "checkout-memory-restart",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("step: 1", "step: 0"), "line 6, rules[0].action.step: Input should be greater than"),
        (("max: 5}", "max: 5, replicas: 3}"), "line 6, rules[0].action.replicas: Extra inputs"),
        ((", max: 5}", "}"), "line 6, rules[0].action.max: Field required"),
        (("type: restart", "type: reboot"), "line 19, rules[2].action: Input tag 'reboot'"),
        (
            ("min_severity: warning}", "min_severity: high}"),
            "line 10, rules[1].signal.min_severity: Input should be",
        ),
        (
            ('"1.4.0", ', "1.4, "),
            "line 16, rules[1].action.tag_history: Value error, quote the tag 1.4",
        ),
        (("name: back", "name: scale"), "line 9, rules[1].name: 'scale' already names rules[0]"),
        (("cooldown: 0", "cooldown: 0\n    cooldown: 5"), "line 21: cooldown given twice"),
        (
            ("max_per_hour: 2\n  - name: back", "max_per_hour: [2\n  - name: back"),
            "line 9: not valid YAML",
        ),
        (("detector_url: https://", "detector_url: ftp://"), "line 2, detector_url: Value error"),
    ],
)
def test_a_bad_rules_file_names_the_line_and_the_field(
    change: tuple[str, str], expected: str
) -> None:
    """Each problem names the file, the line and the field."""
    old, new = change
    assert old in RULES
    with pytest.raises(RulesError) as caught:
        load_config(RULES.replace(old, new, 1), source="remediation.yaml")
    assert any(
        problem.startswith(f"remediation.yaml, {expected}") for problem in caught.value.problems
    ), caught.value.problems


def test_a_rules_file_that_cannot_be_read_is_refused_naming_it(tmp_path: Path) -> None:
    """Missing, not UTF-8 or too large: refused like an invalid file, the path named."""
    with pytest.raises(RulesError, match=r"absent\.yaml: not found \(set REMEDIATION_FILE"):
        load_rules_file(tmp_path / "absent.yaml")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"dry_run: true\n# caf\xe9\n")
    with pytest.raises(RulesError, match=r"latin\.yaml, line 2: not UTF-8 text"):
        load_rules_file(latin)
    large = tmp_path / "large.yaml"
    large.write_text("#" * (1024 * 1024 + 1), encoding="utf-8")
    with pytest.raises(RulesError, match=r"large\.yaml: larger than 1024 KiB"):
        load_rules_file(large)
    good = tmp_path / "good.yaml"
    good.write_text(RULES, encoding="utf-8")
    assert [rule.name for rule in load_rules_file(good).rules] == ["scale", "back", "bounce"]
