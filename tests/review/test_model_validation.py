"""The ``model validation`` review check: a changed pin's candidate against main's serving version.

The change's and main's service folders are written as the check reads them (the pin files
as the portal writes them, the catalog annotations), the registry is the in-memory fake;
the results go through ``run_manifest_checks`` and the approval gate, as a change's do.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portal.changes.models import CheckRun
from portal.cost.model import Prices
from portal.integrations.mlflow import FakeModelRegistry, ModelVersion, RegisteredModel
from portal.models.pins import pin_text
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.review.cost_check import MainService
from portal.review.gate import gate_of
from portal.review.model_validation import changed_pins

SERVICE = "munich-air"
MODEL = f"{SERVICE}-air-quality"
PIN = "deploy/overlays/prod/model.yaml"
TAGS = {"primary_metric": "holdout_mae", "primary_metric_direction": "lower"}
# mae: 1 baseline, 2 the best, 3 much worse than 2, 4 a little worse than 2.
MAE = {"1": 1.0, "2": 0.9, "3": 1.1, "4": 0.909}


def version(number: str, status: str = "READY", **metrics: float) -> ModelVersion:
    values = metrics or {"holdout_mae": MAE.get(number, 1.0), "holdout_r2": 0.5}
    created = datetime(2025, 1, int(number), tzinfo=UTC)
    return ModelVersion(MODEL, number, created, status, tags=TAGS, metrics=values)


@pytest.fixture
def registry() -> FakeModelRegistry:
    fake = FakeModelRegistry()
    versions = [version(number) for number in MAE]
    versions += [version("5", status="PENDING_REGISTRATION"), version("6", holdout_r2=0.7)]
    fake.add(RegisteredModel(MODEL, None, None), versions)
    return fake


def write_service(
    folder: Path, pins: Mapping[str, str | None], annotations: Mapping[str, str] | None = None
) -> Path:
    """Write a service folder: catalog-info.yaml and one pin per environment (None: no file)."""
    notes = {"portal.platform/models": MODEL, **(annotations or {})}
    lines = "".join(f'    {key}: "{value}"\n' for key, value in notes.items())
    folder.mkdir(parents=True)
    (folder / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n"
        f"  name: {SERVICE}\n  annotations:\n{lines}"
        "spec:\n  type: service\n  lifecycle: production\n  owner: group:team-air\n"
    )
    for environment, pinned in pins.items():
        overlay = folder / "deploy" / "overlays" / environment
        overlay.mkdir(parents=True)
        if pinned is not None:
            text = pin_text(SERVICE, environment, MODEL, pinned)
            (overlay / "model.yaml").write_text(text)
    return folder


def validate(
    tmp_path: Path,
    registry: FakeModelRegistry | None,
    change: Mapping[str, str | None],
    main: Mapping[str, str | None],
    annotations: Mapping[str, str] | None = None,
    model_change: Mapping[str, Any] | None = None,
    main_annotations: Mapping[str, str] | None = None,
) -> dict[str, CheckResult]:
    """Run the checks of the change against main; return the model validation results.

    Main's catalog carries ``main_annotations`` when given, else the change's.
    """
    change_dir = write_service(tmp_path / "change" / SERVICE, change, annotations)
    on_main = annotations if main_annotations is None else main_annotations
    main_dir = write_service(tmp_path / "main" / SERVICE, main, on_main)
    results = run_manifest_checks(
        change_dir,
        list(change),
        lambda _ref: True,
        Prices(),
        CheckTools(model_registry=registry),
        main=MainService("0" * 40, main_dir),
        model_change=model_change,
    )
    return {r.name: r for r in results if r.check == "model validation"}


def blocks(result: CheckResult) -> bool:
    """Tell whether the approval gate blocks a change with this check result."""
    run = CheckRun(change_id="c", name=result.name, status=result.status.value, summary="")
    return bool(gate_of([run]).blocking)


def test_only_environments_whose_pin_moved_are_validated(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    results = validate(
        tmp_path,
        registry,
        {"dev": "2", "staging": "", "prod": "1"},
        {"dev": "2", "staging": None, "prod": "1"},
    )
    # An empty pin is the same as no pin file: both serve the model the service trains.
    assert results == {}
    assert registry.calls == 0
    main = tmp_path / "main" / SERVICE
    assert changed_pins(main, None, ["dev", "prod"])[0].environment == "dev"  # a new service


def test_a_better_candidate_passes_naming_both_figures(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    result = validate(tmp_path, registry, {"dev": "1", "prod": "2"}, {"dev": "1", "prod": "1"})
    check = result["model validation (prod)"]
    assert list(result) == ["model validation (prod)"]
    assert check.status is CheckStatus.PASSED, check
    assert check.summary == (
        "candidate version 2 holdout_mae 0.9 vs serving version 1 1 (lower is better, "
        "tolerance 0.0%): better by 10.0%"
    )
    assert not blocks(check)


def test_a_worse_candidate_fails_with_both_numbers_and_blocks_the_approval(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    check = validate(tmp_path, registry, {"prod": "3"}, {"prod": "2"})["model validation (prod)"]
    assert check.status is CheckStatus.FAILED
    assert "candidate version 3 holdout_mae 1.1 vs serving version 2 0.9" in check.summary
    assert "worse by 22.2%, beyond the tolerance" in check.summary
    (finding,) = check.findings
    assert (finding.source, finding.path, finding.object) == (
        PIN,
        "MODEL_VERSION",
        f"{MODEL} version 3",
    )
    assert blocks(check)


def test_the_tolerance_of_the_catalog_lets_a_slightly_worse_candidate_pass(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    strict = validate(tmp_path / "a", registry, {"prod": "4"}, {"prod": "2"})
    assert strict["model validation (prod)"].status is CheckStatus.FAILED
    assert "worse by 1.0%, beyond the tolerance" in strict["model validation (prod)"].summary

    tolerant = {"portal.platform/model-tolerance": "0.02"}
    lenient = validate(tmp_path / "b", registry, {"prod": "4"}, {"prod": "2"}, tolerant)
    check = lenient["model validation (prod)"]
    assert check.status is CheckStatus.PASSED, check
    assert check.summary.endswith("tolerance 2.0%): worse by 1.0%, within the tolerance")


def test_a_change_cannot_loosen_its_own_judge(tmp_path: Path, registry: FakeModelRegistry) -> None:
    # The change raises the tolerance and turns the direction round in the same commit
    # as the worse pin: main's stricter policy still judges it.
    loose = {"portal.platform/model-tolerance": "0.5"}
    strict = {"portal.platform/model-tolerance": "0"}
    check = validate(tmp_path / "a", registry, {"prod": "4"}, {"prod": "2"}, loose, None, strict)
    assert check["model validation (prod)"].status is CheckStatus.FAILED
    flipped = {"portal.platform/model-metric-direction": "higher"}
    lower = {"portal.platform/model-metric-direction": "lower"}
    check = validate(tmp_path / "b", registry, {"prod": "3"}, {"prod": "2"}, flipped, None, lower)
    assert check["model validation (prod)"].status is CheckStatus.FAILED
    # A change that tightens its tolerance is judged by its own, stricter one.
    tight = validate(tmp_path / "c", registry, {"prod": "4"}, {"prod": "2"}, strict, None, loose)
    assert tight["model validation (prod)"].status is CheckStatus.FAILED


def test_the_catalog_names_the_metric_and_its_direction(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    # Judged by mae, 3 is worse than 2; told that higher mae is better, it is better.
    higher = {"portal.platform/model-metric-direction": "higher"}
    check = validate(tmp_path / "a", registry, {"prod": "3"}, {"prod": "2"}, higher)
    assert check["model validation (prod)"].status is CheckStatus.PASSED
    assert "(higher is better" in check["model validation (prod)"].summary

    by_r2 = {
        "portal.platform/model-metric": "holdout_r2",
        "portal.platform/model-metric-direction": "higher",
    }
    check = validate(tmp_path / "b", registry, {"prod": "6"}, {"prod": "2"}, by_r2)
    result = check["model validation (prod)"]
    assert result.status is CheckStatus.PASSED, result
    assert "candidate version 6 holdout_r2 0.7 vs serving version 2 0.5" in result.summary


def test_a_bad_policy_annotation_fails_naming_the_catalog_file(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    bad = {"portal.platform/model-tolerance": "lots"}
    check = validate(tmp_path, registry, {"prod": "2"}, {"prod": "1"}, bad)[
        "model validation (prod)"
    ]
    assert check.status is CheckStatus.FAILED
    sources = {finding.source for finding in check.findings}
    assert sources == {"catalog-info.yaml"}
    assert "portal.platform/model-tolerance: 'lots'" in check.findings[0].message


def test_an_unpinned_main_passes_with_a_note(tmp_path: Path, registry: FakeModelRegistry) -> None:
    check = validate(tmp_path, registry, {"prod": "3"}, {"prod": ""})["model validation (prod)"]
    assert check.status is CheckStatus.PASSED
    assert check.summary == (
        f"main serves no registry version of {MODEL} in prod (unpinned): candidate version 3 "
        "(holdout_mae 1.1) has nothing to be compared with"
    )


def test_unpinning_is_not_validated(tmp_path: Path, registry: FakeModelRegistry) -> None:
    check = validate(tmp_path, registry, {"prod": ""}, {"prod": "2"})["model validation (prod)"]
    assert check.status is CheckStatus.PASSED
    assert "serves the model it trains itself" in check.summary


def rollback(version: str, environment: str = "prod") -> dict[str, str]:
    return {
        "name": MODEL,
        "environment": environment,
        "version": version,
        "from_version": "2",
        "action": "rollback",
    }


def test_a_rollback_needs_no_validation(tmp_path: Path, registry: FakeModelRegistry) -> None:
    # Back to 3 (worse by mae): a rollback returns to what served, it is not judged.
    check = validate(tmp_path, registry, {"prod": "3"}, {"prod": "2"}, model_change=rollback("3"))
    result = check["model validation (prod)"]
    assert result.status is CheckStatus.PASSED
    assert result.summary == "rollback: no validation needed (version 2 -> 3)"
    assert registry.calls == 0


@pytest.mark.parametrize(
    "model_change",
    [
        rollback("1"),  # the pin is not the rollback's version
        rollback("3", environment="dev"),  # nor its environment
        {**rollback("3"), "action": "promote"},
        {**rollback("3"), "name": "another-model"},
    ],
)
def test_only_the_rollback_the_answers_describe_skips_validation(
    tmp_path: Path, registry: FakeModelRegistry, model_change: dict[str, str]
) -> None:
    check = validate(tmp_path, registry, {"prod": "3"}, {"prod": "2"}, model_change=model_change)
    assert check["model validation (prod)"].status is CheckStatus.FAILED


@pytest.mark.parametrize(
    ("change", "registry_down", "message"),
    [
        ("9", False, f"the registry has no version 9 of {MODEL} (versions: 1, 2, 3, 4, 5, 6)"),
        (
            "6",
            False,
            f"{MODEL} version 6 has no holdout_mae metric (its run's metrics: holdout_r2)",
        ),
        ("3", True, "the model registry could not be read: connection refused"),
    ],
)
def test_what_cannot_be_validated_is_an_error_never_a_pass(
    tmp_path: Path, registry: FakeModelRegistry, change: str, registry_down: bool, message: str
) -> None:
    if registry_down:
        registry.unavailable = "connection refused"
    check = validate(tmp_path, registry, {"prod": change}, {"prod": "2"})["model validation (prod)"]
    assert check.status is CheckStatus.ERROR, check
    assert check.summary == message
    assert [finding.source for finding in check.findings] == [PIN]
    assert blocks(check)


def test_the_serving_version_must_be_known_and_measured_too(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    check = validate(tmp_path, registry, {"prod": "2"}, {"prod": "6"})["model validation (prod)"]
    assert check.status is CheckStatus.ERROR
    assert "version 6 has no holdout_mae metric" in check.summary


def test_without_a_registry_or_a_metric_nothing_passes(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    none = validate(tmp_path / "a", None, {"prod": "2"}, {"prod": "1"})["model validation (prod)"]
    assert none.status is CheckStatus.ERROR
    assert "no model registry is configured" in none.summary

    untagged = FakeModelRegistry()
    bare = [ModelVersion(MODEL, n, None, metrics={"holdout_mae": MAE[n]}) for n in ("1", "2")]
    untagged.add(RegisteredModel(MODEL, None, None), bare)
    check = validate(tmp_path / "b", untagged, {"prod": "2"}, {"prod": "1"})
    assert check["model validation (prod)"].status is CheckStatus.ERROR
    assert "no metric to judge" in check["model validation (prod)"].summary


def test_a_version_that_is_not_ready_fails(tmp_path: Path, registry: FakeModelRegistry) -> None:
    check = validate(tmp_path, registry, {"prod": "5"}, {"prod": "2"})["model validation (prod)"]
    assert check.status is CheckStatus.FAILED
    assert check.summary == f"{MODEL} version 5 is PENDING_REGISTRATION, not READY: it cannot serve"


def test_an_unreadable_pin_in_the_change_fails_naming_the_file(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    change_dir = write_service(tmp_path / "change" / SERVICE, {"prod": "2"})
    (change_dir / PIN).write_text(
        "kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n"
        "        - name: app\n          env:\n            - name: MODEL_VERSION\n"
        "              value: latest\n"
    )
    main_dir = write_service(tmp_path / "main" / SERVICE, {"prod": "2"})
    results = run_manifest_checks(
        change_dir,
        ["prod"],
        lambda _ref: True,
        Prices(),
        CheckTools(model_registry=registry),
        main=MainService("0" * 40, main_dir),
    )
    (check,) = [r for r in results if r.check == "model validation"]
    assert check.status is CheckStatus.FAILED
    assert check.summary == f"{PIN}: MODEL_VERSION 'latest' is not a number"
    assert check.findings[0].source == PIN


def test_versions_are_read_once_for_every_environment(
    tmp_path: Path, registry: FakeModelRegistry
) -> None:
    results = validate(tmp_path, registry, {"dev": "2", "prod": "2"}, {"dev": "1", "prod": "1"})
    assert [r.status for r in results.values()] == [CheckStatus.PASSED, CheckStatus.PASSED]
    assert registry.calls == 1
