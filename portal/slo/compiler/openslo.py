"""OpenSLO v1 (kinds SLO and SLI over Prometheus) translated into the Sloth model.

Supported: ``ratioMetric`` and ``thresholdMetric`` SLIs whose metric sources are
Prometheus queries (see ``openslo_sli`` for how each budgeting method, ``Occurrences``,
``Timeslices`` and ``RatioTimeslices``, becomes PromQL), inline ``indicator`` or
``indicatorRef`` to an SLI in any input file, one rolling ``timeWindow`` (the SLO period:
any period, see ``scaled_windows``), several ``objectives`` (one Sloth SLO each, named
``<name>-<index>`` as Sloth does). ``Service``, ``DataSource`` and the alert kinds (and an
SLO's ``alertPolicies``) are accepted and produce no rules; the page and ticket alerts are
Sloth's, named after the SLO. Refused with the reason: calendar-aligned windows, metric
sources other than Prometheus, ratio queries without ``{{.window}}``, composite
objectives. Every error of a document is reported at once: each part of an SLO is
validated on its own, so one bad field hides nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from portal.slo.compiler.documents import Translation
from portal.slo.compiler.errors import Document, Location, SpecError, friendly_message
from portal.slo.compiler.openslo_sli import (
    BUDGETING_METHODS,
    OCCURRENCES,
    CheckedSLI,
    Objective,
    SLISpec,
    check_sli,
    method_problem,
    objective_problems,
    sloth_sli,
)
from portal.slo.compiler.promql import parse_duration

OPENSLO_PREFIX = "openslo/"
OPENSLO_V1 = "openslo/v1"
MODE_OPENSLO = "cli-gen-openslo"
IGNORED_KINDS = frozenset(
    {"Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
)
SPEC_FIELDS = frozenset(
    {
        "description",
        "service",
        "indicator",
        "indicatorRef",
        "timeWindow",
        "budgetingMethod",
        "objectives",
        "alertPolicies",
    }
)
T = TypeVar("T")


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Open):
    """Object metadata; labels may be strings or lists of strings in OpenSLO."""

    name: Annotated[str, Field(min_length=1)]
    displayName: str | None = None  # noqa: N815 (OpenSLO's field names)
    labels: dict[str, str | list[str]] = {}
    annotations: dict[str, str] = {}


class InlineSLI(_Open):
    """An SLI written inside its SLO."""

    metadata: Metadata
    spec: SLISpec


class SLIDocument(_Open):
    """``kind: SLI``."""

    apiVersion: str  # noqa: N815
    kind: str
    metadata: Metadata
    spec: SLISpec


class TimeWindow(_Open):
    """The SLO period: ``duration`` with ``isRolling: true`` (calendar windows unsupported)."""

    duration: str
    isRolling: bool = False  # noqa: N815
    calendar: dict[str, Any] | None = None


_METADATA = TypeAdapter(Metadata)
_INDICATOR = TypeAdapter(InlineSLI)
_TIME_WINDOWS = TypeAdapter(Annotated[list[TimeWindow], Field(min_length=1)])
_OBJECTIVES = TypeAdapter(Annotated[list[Objective], Field(min_length=1)])
_NAME = TypeAdapter(Annotated[str, Field(min_length=1)])


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


class _SLI:
    """An SLI document, checked once however many SLOs refer to it."""

    def __init__(
        self, document: Document, model: SLIDocument, sources: Mapping[str, str | None]
    ) -> None:
        self.document, self.name, self.spec = document, model.metadata.name, model.spec
        self.checked, problems = check_sli(model.spec, sources)
        self.errors = [
            document.error(("spec", *loc), msg, slo_prefix=("-",)) for loc, msg in problems
        ]


def translate_openslo(documents: list[Document]) -> list[Translation]:
    """Translate every OpenSLO SLO document; SLIs are looked up across all documents."""
    slis: dict[str, _SLI] = {}
    slos: list[Document] = []
    failed: list[Translation] = []
    sources = _data_sources(documents)
    for document in documents:
        data = document.data
        kind = data.get("kind")
        problem = _header_problem(data.get("apiVersion"), kind)
        if problem is not None:
            failed.append(_failure(document, [document.error(*problem, slo_prefix=("-",))]))
        elif kind == "SLI":
            try:
                sli = _SLI(document, SLIDocument.model_validate(data), sources)
            except ValidationError as error:
                failed.append(
                    _failure(document, document.validation_errors(error, slo_prefix=("-",)))
                )
                continue
            slis[sli.name] = sli
            if sli.errors:
                failed.append(_failure(document, sli.errors))
        elif kind == "SLO":
            slos.append(document)
    return failed + [_translate(document, slis, sources) for document in slos]


def _data_sources(documents: list[Document]) -> dict[str, str | None]:
    """Map the names of the input's DataSource objects to their type."""
    sources: dict[str, str | None] = {}
    for document in documents:
        data = document.data
        metadata, spec = data.get("metadata"), data.get("spec")
        if data.get("kind") == "DataSource" and isinstance(metadata, dict):
            kind = spec.get("type") if isinstance(spec, dict) else None
            sources[str(metadata.get("name"))] = kind if isinstance(kind, str) else None
    return sources


def _header_problem(api_version: Any, kind: Any) -> tuple[Location, str] | None:
    if api_version != OPENSLO_V1:
        return ("apiVersion",), f'unsupported OpenSLO version "{api_version}": expected openslo/v1'
    if kind not in ("SLO", "SLI") and kind not in IGNORED_KINDS:
        return ("kind",), f'unsupported OpenSLO kind "{kind}" (SLO and SLI make rules)'
    return None


def _failure(document: Document, errors: list[SpecError]) -> Translation:
    translation = Translation(document, {}, [], OPENSLO_V1, MODE_OPENSLO)
    translation.errors = errors
    return translation


class _Checker:
    """Validates the parts of one SLO document, collecting every error."""

    def __init__(self, document: Document, name: str | None) -> None:
        self.document, self.name = document, name
        self.errors: list[SpecError] = []

    def fail(self, location: Location, message: str) -> None:
        self.errors.append(self.document.error(location, message, slo=self.name))

    def part(self, adapter: TypeAdapter[T], data: dict[str, Any], location: Location) -> T | None:
        """Validate ``data[location[-1]]``; a missing part is reported as required."""
        key = location[-1]
        if key not in data:
            self.fail(location, "required")
            return None
        try:
            return adapter.validate_python(data[key])
        except ValidationError as error:
            for item in error.errors():
                where = (*location, *item["loc"])
                self.fail(where, friendly_message(item["type"], item["msg"]))
            return None


def _translate(
    document: Document, slis: dict[str, _SLI], sources: Mapping[str, str | None]
) -> Translation:
    data = document.data
    translation = Translation(document, {}, [], OPENSLO_V1, MODE_OPENSLO)
    name = data["metadata"].get("name") if isinstance(data.get("metadata"), dict) else None
    check = _Checker(document, name if isinstance(name, str) and name else None)
    for key in sorted(set(data) - {"apiVersion", "kind", "metadata", "spec"}):
        check.fail((key,), "unknown field")
    metadata = check.part(_METADATA, data, ("metadata",))
    spec = data.get("spec")
    if not isinstance(spec, dict):
        check.fail(("spec",), "required: a mapping")
        translation.errors = check.errors
        return translation
    for key in sorted(set(spec) - SPEC_FIELDS):
        check.fail(("spec", key), "unknown field")
    service = check.part(_NAME, spec, ("spec", "service"))
    description = spec.get("description") or ""
    if not isinstance(description, str):
        check.fail(("spec", "description"), "must be a string")
    _period(check, spec, translation)
    budgeting = spec.get("budgetingMethod")
    if budgeting not in BUDGETING_METHODS:
        check.fail(
            ("spec", "budgetingMethod"),
            f"must be one of {', '.join(BUDGETING_METHODS)}, got {budgeting!r}",
        )
    sli, checked = _indicator(check, spec, slis, sources)
    objectives = check.part(_OBJECTIVES, spec, ("spec", "objectives"))
    if sli is not None and budgeting in BUDGETING_METHODS:
        problem = method_problem(sli, budgeting)
        if problem is not None:
            location = ("spec", "indicator") if "indicator" in spec else ("spec", "indicatorRef")
            check.fail(location, problem)
    entries = []
    for index, objective in enumerate(objectives or []):
        where: Location = ("spec", "objectives", index)
        entry = _objective(check, where, objective, (sli, checked), budgeting)
        if entry is not None and budgeting != OCCURRENCES and objective.timeSliceWindow:
            slice_ms = parse_duration(objective.timeSliceWindow)
            translation.slices.append(((*where, "timeSliceWindow"), slice_ms))
        if entry is None or metadata is None:
            continue
        slo_name = metadata.name if len(objectives or []) == 1 else f"{metadata.name}-{index}"
        labels = {
            key: value if isinstance(value, str) else ",".join(value)
            for key, value in metadata.labels.items()
        }
        entry.update(
            name=slo_name,
            description=description,
            labels=labels,
            alerting={"name": f"{_pascal(slo_name)}BurnRate"},
        )
        entries.append(entry)
        translation.origins.append(where)
    translation.errors = check.errors
    if not check.errors:
        translation.service_level = {"service": service, "slos": entries}
    return translation


def _period(check: _Checker, spec: dict[str, Any], translation: Translation) -> None:
    windows = check.part(_TIME_WINDOWS, spec, ("spec", "timeWindow"))
    if windows is None:
        return
    if len(windows) != 1:
        check.fail(("spec", "timeWindow"), "exactly one time window is supported")
        return
    window = windows[0]
    if window.calendar is not None or not window.isRolling:
        check.fail(
            ("spec", "timeWindow", 0),
            "calendar-aligned windows are not supported: burn-rate alerts need a rolling "
            "window (isRolling: true)",
        )
        return
    if re.fullmatch(r"\d+[MQY]", window.duration):
        # OpenSLO's calendar units: their length varies, a rolling period needs a fixed one.
        check.fail(
            ("spec", "timeWindow", 0, "duration"),
            f"{window.duration} (months, quarters, years) has no fixed length: write the "
            "rolling period in days or weeks (e.g. 30d, 4w)",
        )
        return
    translation.period = window.duration
    translation.period_location = ("spec", "timeWindow", 0, "duration")


def _indicator(
    check: _Checker, spec: dict[str, Any], slis: dict[str, _SLI], sources: Mapping[str, str | None]
) -> tuple[SLISpec | None, CheckedSLI | None]:
    """Return the SLO's SLI as written, and as checked (None when it cannot be used)."""
    if "indicator" in spec:
        if "indicatorRef" in spec:
            check.fail(
                ("spec", "indicatorRef"), "only one of indicator and indicatorRef may be set"
            )
        inline = check.part(_INDICATOR, spec, ("spec", "indicator"))
        if inline is None:
            return None, None
        checked, problems = check_sli(inline.spec, sources)
        for location, message in problems:
            check.fail(("spec", "indicator", "spec", *location), message)
        return inline.spec, checked
    ref = spec.get("indicatorRef")
    if not isinstance(ref, str) or not ref:
        check.fail(("spec",), "indicator or indicatorRef is required")
        return None, None
    sli = slis.get(ref)
    if sli is None:
        check.fail(("spec", "indicatorRef"), f'no SLI named "{ref}" in the input')
        return None, None
    if sli.checked is None:
        line = f":{sli.errors[0].line}" if sli.errors and sli.errors[0].line else ""
        check.fail(
            ("spec", "indicatorRef"),
            f'the SLI "{ref}" cannot be used (see its errors at {sli.document.source}{line})',
        )
    return sli.spec, sli.checked


def _objective(
    check: _Checker,
    where: Location,
    objective: Objective,
    sli: tuple[SLISpec | None, CheckedSLI | None],
    budgeting: Any,
) -> dict[str, Any] | None:
    """Check one objective; return its Sloth SLO fields when the whole SLO is usable."""
    written, checked = sli
    count = len(check.errors)
    if objective.indicator is not None or objective.indicatorRef is not None:
        check.fail(where, "composite SLOs (an indicator per objective) are not supported")
    percent = None
    if (objective.target is None) == (objective.targetPercent is None):
        check.fail(where, "exactly one of target (0-1) and targetPercent (0-100) is required")
    else:
        percent = (
            objective.targetPercent
            if objective.targetPercent is not None
            else (objective.target or 0.0) * 100
        )
        if not 0 < percent < 100:
            field = "target" if objective.target is not None else "targetPercent"
            check.fail((*where, field), f"must be above 0 and below 100 percent, got {percent:g}")
    if written is not None and budgeting in BUDGETING_METHODS:
        for location, message in objective_problems(written, budgeting, objective):
            check.fail((*where, *location), message)
    if len(check.errors) > count or checked is None or budgeting not in BUDGETING_METHODS:
        return None
    return {"objective": percent, "sli": sloth_sli(checked, budgeting, objective)}
