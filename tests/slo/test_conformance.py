"""Our rules against Sloth's: every conformance case, compared semantically.

Sloth's ``test/integration`` outputs (asserted byte for byte by Sloth's own CLI test) are
the oracle; the older ``examples/_gen`` files carry ``cmd: examplesgen.sh`` and
``sloth_version: dev`` from the script that made them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import GenerateOptions, generate, generate_sources
from portal.slo.compiler.rules import RuleOptions
from tests.slo.support import SLOTH, normalise, parsed, render_template

INTEGRATION = SLOTH / "integration"
# expected output -> (input, options), as Sloth's generate_test.go runs them.
INTEGRATION_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "out-base.yaml.tpl": ("in-base.yaml", {}),
    "out-base-28d.yaml.tpl": ("in-base.yaml", {"period": "28d"}),
    "out-base-custom-windows-7d.yaml.tpl": (
        "in-base.yaml",
        {"period": "7d", "windows": INTEGRATION / "windows"},
    ),
    "out-base-no-alerts.yaml.tpl": ("in-base.yaml", {"rules": RuleOptions(disable_alerts=True)}),
    "out-base-no-recordings.yaml.tpl": (
        "in-base.yaml",
        {"rules": RuleOptions(disable_recordings=True)},
    ),
    "out-base-extra-labels.yaml.tpl": (
        "in-base.yaml",
        {"extra_labels": {"exk1": "exv1", "exk2": "exv2"}},
    ),
    "out-multifile.yaml.tpl": ("in-multifile.yaml", {}),
}
EXAMPLES_OPTIONS = GenerateOptions(
    extra_labels={"cmd": "examplesgen.sh"}, rules=RuleOptions(sloth_version="dev")
)
EXAMPLES = [
    "getting-started",
    "raw-home-wifi",
    "home-wifi",
    "kubernetes-apiserver",
    "no-alerts",
    "multifile",
    "contrib-slo-plugins",
    # Not plugin-getting-started: its sli.plugin runs Go code inside Sloth, so its output is
    # not vendored; the spec's rejection is tested below.
]


def test_every_integration_output_has_a_case(sloth_dir: Path) -> None:
    outputs = {path.name for path in (sloth_dir / "integration").glob("out-*.yaml.tpl")}
    assert outputs == set(INTEGRATION_CASES)


@pytest.mark.parametrize("expected_name", sorted(INTEGRATION_CASES))
def test_integration_output_matches_sloth(sloth_dir: Path, expected_name: str) -> None:
    source, options = INTEGRATION_CASES[expected_name]
    expected = render_template(sloth_dir / "integration" / expected_name)
    outputs = generate([sloth_dir / "integration" / source], GenerateOptions(**options))

    got = parsed(outputs)

    # One document (file) per service where Sloth writes one document per input document.
    assert len(got) == len(expected)
    assert [normalise(document) for document in got] == [normalise(d) for d in expected]


def test_28d_period_uses_4w_and_sloths_factors(sloth_dir: Path) -> None:
    outputs = generate([sloth_dir / "integration" / "in-base.yaml"], GenerateOptions(period="28d"))
    text = outputs[0].text

    assert "slo:sli_error:ratio_rate4w" in text
    for factor in ("13.44", "5.6000000000000005", "2.8000000000000003", "0.9333333333333333"):
        assert f"({factor} * 0.0009999999999999432)" in text


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_output_matches_sloth(sloth_dir: Path, name: str) -> None:
    text = (sloth_dir / f"{name}.yml").read_text(encoding="utf-8")
    expected = render_template(sloth_dir / "_gen" / f"{name}.yml")
    if name == "contrib-slo-plugins":
        # Sloth's example uses label names Prometheus rejects (plug-l1): rename them on
        # both sides to compare everything else (info_labels and rule_intervals applied).
        text = text.replace("plug-l", "plug_l")
        for document in expected:
            for group in document["groups"]:
                for rule in group["rules"]:
                    labels = rule.get("labels", {})
                    rule["labels"] = {k.replace("plug-l", "plug_l"): v for k, v in labels.items()}

    got = parsed(generate_sources({f"{name}.yml": text}, EXAMPLES_OPTIONS))

    assert [normalise(document) for document in got] == [normalise(d) for d in expected]


def test_contrib_example_is_rejected_for_its_label_names(sloth_dir: Path) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        generate([sloth_dir / "contrib-slo-plugins.yml"])

    (error,) = caught.value.errors
    assert error.slo == "requests-availability-contrib-plugin-info-labels-v1"
    assert error.field == "plugins.chain[0].config.labels"
    assert '"plug-l3"' in error.message
    assert error.line == 16


def test_sli_plugin_example_is_rejected_with_a_way_out(sloth_dir: Path) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        generate([sloth_dir / "plugin-getting-started.yml"])

    (error,) = caught.value.errors
    assert error.field == "sli"
    assert "sli.raw.error_ratio_query" in error.message


def test_invalid_version_is_rejected(sloth_dir: Path) -> None:
    path = sloth_dir / "integration" / "in-invalid-version.yaml"

    with pytest.raises(InvalidSpecError) as caught:
        generate([path])

    (error,) = caught.value.errors
    assert str(error) == (
        f'{path}:1: version: unsupported version "prometheus/v999": expected "prometheus/v1"'
    )


@pytest.mark.parametrize(
    ("name", "slo", "field", "message"),
    [
        ("bad-aa.yaml", "slo02", "objective", "must be above 0 and below 100"),
        ("bad-multi.yaml", "slo02", "sli", "one of events (error_query and total_query) or raw"),
    ],
)
def test_validate_bad_inputs_are_rejected(
    sloth_dir: Path, name: str, slo: str, field: str, message: str
) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        generate([sloth_dir / "integration" / "validate" / "bad" / name])

    (error,) = caught.value.errors
    assert (error.slo, error.field) == (slo, field)
    assert message in error.message


def test_every_bad_input_has_a_case(sloth_dir: Path) -> None:
    names = {path.name for path in (sloth_dir / "integration" / "validate" / "bad").iterdir()}
    assert names == {"bad-aa.yaml", "bad-multi.yaml"}


@pytest.mark.parametrize("name", ["good-aa.yaml", "good-multi.yaml"])
def test_validate_good_inputs_are_accepted(sloth_dir: Path, name: str) -> None:
    outputs = generate([sloth_dir / "integration" / "validate" / "good" / name])

    assert outputs
    assert all(document["groups"] for document in parsed(outputs))


def test_camel_case_alert_fields_are_read(sloth_dir: Path) -> None:
    # good-aa.yaml writes pageAlert/ticketAlert (the CRD's spelling) in a prometheus/v1 file;
    # Sloth ignores them silently, we read them.
    outputs = generate([sloth_dir / "integration" / "validate" / "good" / "good-aa.yaml"])
    alerts = [
        rule for group in parsed(outputs)[0]["groups"] for rule in group["rules"] if "alert" in rule
    ]

    assert alerts[0]["labels"]["alert03k1"] == "alert03v1"
    assert alerts[1]["labels"]["alert04k1"] == "alert04v1"


def test_the_same_slo_in_two_files_is_an_error(sloth_dir: Path) -> None:
    good = sloth_dir / "integration" / "validate" / "good"

    with pytest.raises(InvalidSpecError) as caught:
        generate([good / "good-aa.yaml", good / "good-multi.yaml"])

    assert {error.slo for error in caught.value.errors} == {"slo1", "slo02"}
    assert all("also defined at" in error.message for error in caught.value.errors)
