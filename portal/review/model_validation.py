"""The ``model validation`` review check: a candidate model version against the serving one.

It runs for each environment whose pin (``deploy/overlays/<env>/model.yaml``, see
:mod:`portal.models.pins`) differs between the change and main. The candidate (the
change's pinned version) and the serving version (main's) are read from the model
registry, and the metric the model is judged by is compared: the policy comes from the
``catalog-info.yaml`` annotations (``portal.platform/model-metric``,
``-metric-direction``, ``-tolerance``) of main, or of the change where main sets none or
the change is stricter (:func:`stricter`: a change cannot loosen its own judge), with the
candidate's ``primary_metric`` and ``primary_metric_direction`` tags and a tolerance of 0
as defaults. A candidate worse
than the serving version by more than the tolerance (a fraction of the serving figure)
fails, naming both figures; otherwise the check passes, naming them too.

Main serving nothing from the registry (unpinned) passes with a note: there is nothing to
compare with. A rollback the portal proposed (``answers["model"]`` says ``rollback`` and
the pin is its version) passes without validation: it returns to what served before.
A missing metric, a version the registry does not know, or a registry that cannot be
reached makes the check an error, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.integrations.kubernetes import Finding, Severity
from portal.integrations.mlflow import ModelRegistry, ModelVersion, RegistryError
from portal.models.owners import ValidationPolicy, model_names, validation_policy
from portal.models.pins import PIN_FILE, URI_VARIABLE, VERSION_VARIABLE, Pin, read_pin
from portal.yaml_source import YamlStream

RULE = "model-validation"
CATALOG_FILE = "catalog-info.yaml"
READY = "READY"
# Metrics are floats logged by training code: a rounding error is no regression.
EPSILON = 1e-9


@dataclass
class ValidationOutcome:
    """The check's summary and findings, and whether it could vouch for its result."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    could_not_run: bool = False


@dataclass(frozen=True)
class PinChange:
    """One environment whose pin differs between the change (``new``) and main (``old``)."""

    environment: str
    path: str  # relative to the service folder, as the findings name it
    new: Pin
    old: Pin


def _pin_of(service_dir: Path | None, environment: str) -> Pin:
    path = f"deploy/overlays/{environment}/{PIN_FILE}"
    if service_dir is None or not (service_dir / path).is_file():
        return Pin(environment, path)
    try:
        text = (service_dir / path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return Pin(environment, path, problem=f"{path}: cannot be read ({error})")
    return read_pin(environment, path, text)


def _same(new: Pin, old: Pin) -> bool:
    return (new.version, new.model, new.problem) == (old.version, old.model, old.problem)


def changed_pins(
    service_dir: Path, main_dir: Path | None, environments: Sequence[str]
) -> list[PinChange]:
    """Return the environments whose pin differs between the change and main (None: new)."""
    found = []
    for environment in environments:
        new, old = _pin_of(service_dir, environment), _pin_of(main_dir, environment)
        if not _same(new, old):
            found.append(PinChange(environment, new.path, new, old))
    return found


def _annotations(service_dir: Path) -> tuple[Mapping[str, Any], str | None]:
    """Return the annotations of the change's ``catalog-info.yaml``, or why there are none."""
    try:
        text = (service_dir / CATALOG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return {}, f"{CATALOG_FILE} cannot be read ({error})"
    stream = YamlStream(text)
    documents = [document.data for document in stream]
    if stream.problem is not None:
        return {}, f"{CATALOG_FILE}: {stream.problem.reason}"
    for data in documents:
        metadata = data.get("metadata") if isinstance(data, dict) else None
        if isinstance(data, dict) and data.get("kind") == "Component":
            annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
            return (annotations if isinstance(annotations, dict) else {}), None
    return {}, f"{CATALOG_FILE} has no Component"


class VersionLookup:
    """The registry's versions of each model, asked once per check run."""

    def __init__(self, registry: ModelRegistry | None) -> None:
        self.registry = registry
        self._known: dict[str, list[ModelVersion]] = {}

    def versions(self, name: str) -> list[ModelVersion]:
        """Return the versions of ``name``; raises :class:`RegistryError`."""
        if self.registry is None:
            raise RegistryError(
                "no model registry is configured (PORTAL_MLFLOW_URL, or MLflow from "
                "`make tools`), so no version can be validated"
            )
        if name not in self._known:
            self._known[name] = self.registry.versions(name)
        return self._known[name]


@dataclass(frozen=True)
class _Context:
    """What every outcome of one environment names."""

    change: PinChange
    model: str

    def finding(self, message: str, version: str | None = None, reason: str = "") -> Finding:
        pin = self.change.new
        variable = URI_VARIABLE if pin.model is not None else VERSION_VARIABLE
        return Finding(
            severity=Severity.ERROR,
            rule=RULE,
            object=f"{self.model} version {version}" if version else self.model,
            source=self.change.path,
            path=variable,
            message=message,
            reason=reason,
        )

    def error(self, message: str, version: str | None = None) -> ValidationOutcome:
        return ValidationOutcome(message, [self.finding(message, version)], could_not_run=True)


def _model_name(
    change: PinChange, annotations: Mapping[str, Any], model_change: Mapping[str, Any] | None
) -> tuple[str | None, str]:
    """Return the registered model the pin names, or why it cannot be told."""
    if change.new.model is not None:
        return change.new.model, ""
    named = model_names(annotations)
    asked = model_change.get("name") if model_change else None
    if isinstance(asked, str) and asked in named:
        return asked, ""
    if len(named) == 1:
        return named[0], ""
    if not named:
        return None, f"{CATALOG_FILE} names no registered model (portal.platform/models)"
    return None, (
        f"{CATALOG_FILE} names {len(named)} models ({', '.join(named)}); the pin does not say "
        f"which: set {URI_VARIABLE}=models:/<name>/<version>"
    )


def _is_rollback(change: PinChange, model: str, model_change: Mapping[str, Any] | None) -> bool:
    if not model_change or model_change.get("action") != "rollback":
        return False
    if model_change.get("environment") != change.environment or model_change.get("name") != model:
        return False
    return (change.new.version or "") == model_change.get("version")


def _figure(value: float) -> str:
    return f"{value:.6g}"


def _metric(version: ModelVersion, metric: str) -> float | None:
    value = version.metrics.get(metric)
    return value if value is not None and math.isfinite(value) else None


def _worse_by(candidate: float, serving: float, direction: str) -> float:
    """Return how much worse the candidate is, as a fraction of the serving figure."""
    delta = candidate - serving if direction == "lower" else serving - candidate
    if abs(delta) <= EPSILON:
        return 0.0
    if serving == 0:
        return math.inf if delta > 0 else -math.inf
    return delta / abs(serving)


def _no_metric(context: _Context, version: ModelVersion, metric: str) -> ValidationOutcome:
    known = ", ".join(sorted(version.metrics)) or "none"
    return context.error(
        f"{context.model} version {version.version} has no {metric} metric "
        f"(its run's metrics: {known})",
        version.version,
    )


def _compare(
    context: _Context,
    candidate: ModelVersion,
    current: ModelVersion,
    policy: ValidationPolicy,
) -> ValidationOutcome:
    tags = candidate.tags
    metric = policy.metric or tags.get("primary_metric") or None
    tagged = tags.get("primary_metric_direction")
    direction = policy.direction or (tagged if tagged in ("lower", "higher") else "lower")
    if metric is None:
        return context.error(
            f"no metric to judge {context.model} by: set portal.platform/model-metric in "
            f"{CATALOG_FILE}, or tag the version with primary_metric",
            candidate.version,
        )
    new, old = _metric(candidate, metric), _metric(current, metric)
    if new is None:
        return _no_metric(context, candidate, metric)
    if old is None:
        return _no_metric(context, current, metric)
    worse = _worse_by(new, old, direction)
    said = (
        f"candidate version {candidate.version} {metric} {_figure(new)} vs serving version "
        f"{current.version} {_figure(old)} ({direction} is better, tolerance "
        f"{policy.tolerance:.1%})"
    )
    if worse > policy.tolerance + EPSILON:
        how = "worse" if math.isinf(worse) else f"worse by {worse:.1%}"
        message = f"{said}: {how}, beyond the tolerance"
        reason = (
            "A promotion may not serve a model that judges itself worse than the one serving "
            "by more than the tolerance of the service's catalog-info.yaml."
        )
        finding = context.finding(message, candidate.version, reason)
        return ValidationOutcome(message, [finding])
    if worse < 0:
        how = "better" if math.isinf(worse) else f"better by {-worse:.1%}"
    elif worse == 0:
        how = "equal"
    else:
        how = f"worse by {worse:.1%}, within the tolerance"
    return ValidationOutcome(f"{said}: {how}")


def _find(
    context: _Context, versions: Sequence[ModelVersion], number: str
) -> ModelVersion | ValidationOutcome:
    found = next((item for item in versions if item.version == number), None)
    if found is None:
        known = ", ".join(item.version for item in versions) or "none"
        return context.error(
            f"the registry has no version {number} of {context.model} (versions: {known})", number
        )
    return found


def stricter(change: ValidationPolicy, main: ValidationPolicy) -> ValidationPolicy:
    """Return the policy a change is judged by: main's, unless the change's is stricter.

    A change may not loosen its own judge: main's metric and direction win when set, and
    the smaller tolerance holds (a change that also raises the tolerance is judged by
    main's until it merges).
    """
    return ValidationPolicy(
        metric=main.metric or change.metric,
        direction=main.direction or change.direction,
        tolerance=min(change.tolerance, main.tolerance),
    )


def validate_pin(
    change: PinChange,
    service_dir: Path,
    lookup: VersionLookup,
    model_change: Mapping[str, Any] | None = None,
    main_dir: Path | None = None,
) -> ValidationOutcome:
    """Validate one environment's new pin against main's (see the module's docstring)."""
    new, old = change.new, change.old
    annotations, catalog_problem = _annotations(service_dir)
    model, why = _model_name(change, annotations, model_change)
    context = _Context(change, model or "model")
    if new.problem is not None:
        return ValidationOutcome(new.problem, [context.finding(new.problem)])
    if model is None:
        return context.error(catalog_problem or why)
    if _is_rollback(change, model, model_change):
        back = new.version or "unpinned"
        was = old.version or "unpinned"
        return ValidationOutcome(f"rollback: no validation needed (version {was} -> {back})")
    if new.version is None:
        return ValidationOutcome(
            f"{change.environment} is unpinned: the service serves the model it trains itself; "
            "no registry version to validate"
        )
    policy, problems = validation_policy(annotations)
    if main_dir is not None and (main_dir / CATALOG_FILE).is_file():
        policy = stricter(policy, validation_policy(_annotations(main_dir)[0])[0])
    outcome = _against_main(context, lookup, policy)
    for problem in problems:
        outcome.findings.append(
            Finding(
                severity=Severity.ERROR,
                rule=RULE,
                object=model,
                source=CATALOG_FILE,
                path="metadata.annotations",
                message=f"{problem}; its default was used",
            )
        )
    return outcome


def _against_main(
    context: _Context, lookup: VersionLookup, policy: ValidationPolicy
) -> ValidationOutcome:
    """Compare the candidate of a changed pin with the version main serves."""
    model, new, old = context.model, context.change.new, context.change.old
    assert new.version is not None
    try:
        versions = lookup.versions(model)
    except RegistryError as error:
        return context.error(f"the model registry could not be read: {error}", new.version)
    candidate = _find(context, versions, new.version)
    if isinstance(candidate, ValidationOutcome):
        return candidate
    if candidate.status != READY:
        message = (
            f"{model} version {new.version} is {candidate.status}, not {READY}: it cannot serve"
        )
        return ValidationOutcome(message, [context.finding(message, new.version)])
    if old.problem is not None:
        return context.error(f"main's pin cannot be read: {old.problem}", new.version)
    old_version = old.version if old.model in (None, model) else None
    if old_version is None:
        metric = policy.metric or candidate.tags.get("primary_metric")
        value = _metric(candidate, metric) if metric else None
        figure = f" ({metric} {_figure(value)})" if metric and value is not None else ""
        return ValidationOutcome(
            f"main serves no registry version of {model} in {context.change.environment} "
            f"(unpinned): candidate version {new.version}{figure} has nothing to be compared with"
        )
    current = _find(context, versions, old_version)
    if isinstance(current, ValidationOutcome):
        return current
    return _compare(context, candidate, current, policy)
