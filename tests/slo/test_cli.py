"""``portal slo generate`` and ``portal slo validate``."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from portal.cli import app
from tests.slo.support import SRE_SLOS

runner = CliRunner()


def test_generate_prints_rules_to_stdout(sloth_dir: Path) -> None:
    result = runner.invoke(app, ["slo", "generate", str(sloth_dir / "getting-started.yml")])

    assert result.exit_code == 0, result.output
    (document,) = yaml.safe_load_all(result.stdout)
    assert (
        document["groups"][0]["name"] == "sloth-slo-sli-recordings-myservice-requests-availability"
    )
    assert result.stderr == ""


def test_generate_writes_one_file_per_service_with_tests(tmp_path: Path, sloth_dir: Path) -> None:
    out = tmp_path / "rules"
    result = runner.invoke(
        app,
        ["slo", "generate", str(sloth_dir / "multifile.yml"), "--out", str(out), "--tests"],
    )

    assert result.exit_code == 0, result.output
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(
        [
            "myservice.rules.yaml",
            "myservice-requests-availability.test.yaml",
            "myservice2.rules.yaml",
            "myservice2-requests-availability.test.yaml",
        ]
    )
    assert all(len(list(yaml.safe_load_all(path.read_text()))) == 1 for path in out.iterdir())
    assert sorted(result.stdout.splitlines()) == [str(out / name) for name in names]


def test_generate_options(sloth_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "slo",
            "generate",
            str(sloth_dir / "integration" / "in-base.yaml"),
            "--format",
            "operator",
            "--period",
            "28d",
            "-l",
            "env=prod",
            "--extra-label",
            "region=eu",
            "--disable-alerts",
            "--sloth-version",
            "v9",
        ],
    )

    assert result.exit_code == 0, result.output
    document = yaml.safe_load(result.stdout)
    assert document["kind"] == "PrometheusRule"
    rules = [rule for group in document["spec"]["groups"] for rule in group["rules"]]
    assert all("alert" not in rule for rule in rules)
    assert all(rule["labels"]["env"] == "prod" for rule in rules)
    assert any(rule["record"] == "slo:sli_error:ratio_rate4w" for rule in rules)
    assert rules[-1]["labels"]["sloth_version"] == "v9"


def test_generate_with_custom_windows(sloth_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "slo",
            "generate",
            str(sloth_dir / "integration" / "in-base.yaml"),
            "--windows",
            str(sloth_dir / "integration" / "windows"),
            "--period",
            "7d",
            "--disable-recordings",
        ],
    )

    assert result.exit_code == 0, result.output
    (group,) = [g for g in yaml.safe_load(result.stdout)["groups"]]
    assert "(13.44 * 0.0009999999999999432)" in group["rules"][0]["expr"]


def test_several_services_on_stdout_get_a_note(sloth_dir: Path) -> None:
    result = runner.invoke(app, ["slo", "generate", str(sloth_dir / "multifile.yml")])

    assert result.exit_code == 0
    assert len(list(yaml.safe_load_all(result.stdout))) == 2
    assert "Prometheus reads only the first document" in result.stderr


def test_bad_specs_exit_1_with_every_error_on_stderr(sloth_dir: Path) -> None:
    bad = sloth_dir / "integration" / "validate" / "bad"
    result = runner.invoke(app, ["slo", "generate", str(bad)])

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        f'error: {bad / "bad-aa.yaml"}:28: SLO "slo02": objective: must be above 0 and below 100 '
        "(a percentage), got 101",
        f'error: {bad / "bad-multi.yaml"}:77: SLO "slo02": sli: one of events (error_query and '
        "total_query) or raw is required",
        "2 error(s)",
    ]


def test_usage_errors(tmp_path: Path, sloth_dir: Path) -> None:
    spec = str(sloth_dir / "getting-started.yml")
    result = runner.invoke(app, ["slo", "generate", spec, "--tests"])
    assert result.exit_code == 2
    assert "--out" in result.output

    result = runner.invoke(app, ["slo", "generate", spec, "-l", "novalue"])
    assert result.exit_code == 2
    assert "expected key=value" in result.output

    result = runner.invoke(app, ["slo", "generate", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr


def test_validate(sloth_dir: Path) -> None:
    result = runner.invoke(app, ["slo", "validate", str(SRE_SLOS)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "6 SLO(s) in 3 file(s): valid\n"

    # Each file on its own, as Sloth validates: the two good files share SLO ids.
    good = sloth_dir / "integration" / "validate" / "good"
    assert runner.invoke(app, ["slo", "validate", str(good)]).exit_code == 0

    result = runner.invoke(app, ["slo", "validate", str(sloth_dir / "integration")])
    assert result.exit_code == 1
    assert "prometheus/v999" in result.stderr
