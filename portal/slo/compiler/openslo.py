"""OpenSLO v1 (kinds SLO and SLI, ratio metrics) translated into the Sloth model.

Supported: Prometheus ``ratioMetric`` SLIs (``bad``/``total`` become Sloth events,
``good``/``total`` the raw error ratio ``1 - good/total``, ``raw`` with ``rawType``),
inline ``indicator`` or ``indicatorRef`` to an SLI in any input file, one rolling
``timeWindow`` (the SLO period, which needs an AlertWindows file), ``Occurrences``
budgeting, several ``objectives`` (one Sloth SLO each, named ``<name>-<index>`` as Sloth
does). Queries use ``{{.window}}`` in their ranges, as in Sloth. ``Service``,
``DataSource`` and the alert kinds are accepted and produce no rules; the page and ticket
alerts are Sloth's, named after the SLO.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from portal.slo.compiler.documents import Translation
from portal.slo.compiler.errors import Document, Location

OPENSLO_PREFIX = "openslo/"
OPENSLO_V1 = "openslo/v1"
MODE_OPENSLO = "cli-gen-openslo"
IGNORED_KINDS = frozenset(
    {"Service", "DataSource", "AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
)


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Open):
    """Object metadata; labels may be strings or lists of strings in OpenSLO."""

    name: Annotated[str, Field(min_length=1)]
    displayName: str | None = None  # noqa: N815 (OpenSLO's field names)
    labels: dict[str, str | list[str]] = {}
    annotations: dict[str, str] = {}


class MetricSource(_Open):
    """Where a metric comes from: only Prometheus queries (``spec.query``) are understood."""

    metricSourceRef: str | None = None  # noqa: N815
    type: str | None = None
    spec: dict[str, Any]


class MetricRef(_Open):
    """A ``good``, ``bad``, ``total`` or ``raw`` part of a ratio."""

    metricSource: MetricSource  # noqa: N815


class RatioMetric(_Open):
    """A ratio of two queries, or a precomputed ratio (``raw``)."""

    counter: bool | None = None
    good: MetricRef | None = None
    bad: MetricRef | None = None
    total: MetricRef | None = None
    rawType: Literal["success", "failure"] | None = None  # noqa: N815
    raw: MetricRef | None = None


class SLISpec(_Open):
    """An indicator: ``ratioMetric`` (supported) or ``thresholdMetric`` (not)."""

    description: str = ""
    thresholdMetric: dict[str, Any] | None = None  # noqa: N815
    ratioMetric: RatioMetric | None = None  # noqa: N815


class InlineSLI(_Open):
    """An SLI written inside its SLO."""

    metadata: Metadata
    spec: SLISpec


class SLIDocument(_Open):
    """``kind: SLI``."""

    apiVersion: str  # noqa: N815
    kind: Literal["SLI"]
    metadata: Metadata
    spec: SLISpec


class TimeWindow(_Open):
    """The SLO period: ``duration`` with ``isRolling: true`` (calendar windows unsupported)."""

    duration: str
    isRolling: bool = False  # noqa: N815
    calendar: dict[str, Any] | None = None


class Objective(_Open):
    """One objective: ``target`` (0-1) or ``targetPercent`` (0-100)."""

    displayName: str | None = None  # noqa: N815
    op: str | None = None
    value: float | None = None
    target: float | None = None
    targetPercent: float | None = None  # noqa: N815
    timeSliceTarget: float | None = None  # noqa: N815
    timeSliceWindow: str | int | None = None  # noqa: N815
    indicator: InlineSLI | None = None
    indicatorRef: str | None = None  # noqa: N815
    compositeWeight: float | None = None  # noqa: N815


class SLOSpec(_Open):
    """The body of ``kind: SLO``."""

    description: str = ""
    service: Annotated[str, Field(min_length=1)]
    indicator: InlineSLI | None = None
    indicatorRef: str | None = None  # noqa: N815
    timeWindow: Annotated[list[TimeWindow], Field(min_length=1)]  # noqa: N815
    budgetingMethod: str  # noqa: N815
    objectives: Annotated[list[Objective], Field(min_length=1)]
    alertPolicies: list[Any] = []  # noqa: N815


class SLODocument(_Open):
    """``kind: SLO``."""

    apiVersion: str  # noqa: N815
    kind: Literal["SLO"]
    metadata: Metadata
    spec: SLOSpec


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name))


def translate_openslo(documents: list[Document]) -> list[Translation]:
    """Translate every OpenSLO SLO document; SLIs are looked up across all documents."""
    slis: dict[str, SLISpec] = {}
    slos: list[tuple[Document, SLODocument]] = []
    failed: list[Translation] = []
    for document in documents:
        data = document.data
        kind = data.get("kind")
        problem = _header_problem(data.get("apiVersion"), kind)
        if problem is not None:
            failed.append(_failure(document, problem[0], problem[1]))
            continue
        if kind in IGNORED_KINDS:
            continue
        try:
            if kind == "SLI":
                sli = SLIDocument.model_validate(data)
                slis[sli.metadata.name] = sli.spec
            else:
                slos.append((document, SLODocument.model_validate(data)))
        except ValidationError as error:
            translation = Translation(document, {}, [], OPENSLO_V1, MODE_OPENSLO)
            translation.errors = document.validation_errors(error, slo_prefix=("-",))
            failed.append(translation)
    return failed + [_translate(document, slo, slis) for document, slo in slos]


def _header_problem(api_version: Any, kind: Any) -> tuple[Location, str] | None:
    if api_version != OPENSLO_V1:
        return ("apiVersion",), f'unsupported OpenSLO version "{api_version}": expected openslo/v1'
    if kind not in ("SLO", "SLI") and kind not in IGNORED_KINDS:
        return ("kind",), f'unsupported OpenSLO kind "{kind}" (SLO and SLI make rules)'
    return None


def _failure(document: Document, location: Location, message: str) -> Translation:
    translation = Translation(document, {}, [], OPENSLO_V1, MODE_OPENSLO)
    translation.errors.append(document.error(location, message, slo_prefix=("-",)))
    return translation


def _translate(document: Document, slo: SLODocument, slis: dict[str, SLISpec]) -> Translation:
    spec = slo.spec
    translation = Translation(document, {}, [], OPENSLO_V1, MODE_OPENSLO)

    def fail(location: Location, message: str) -> Translation:
        translation.errors.append(document.error(location, message, slo=slo.metadata.name))
        return translation

    if spec.budgetingMethod != "Occurrences":
        return fail(
            ("spec", "budgetingMethod"),
            f'"{spec.budgetingMethod}" is not supported: multi-burn-rate alerts count '
            "events (Occurrences)",
        )
    if len(spec.timeWindow) != 1:
        return fail(("spec", "timeWindow"), "exactly one time window is supported")
    window = spec.timeWindow[0]
    if window.calendar is not None or not window.isRolling:
        return fail(
            ("spec", "timeWindow", 0), "only rolling windows (isRolling: true) are supported"
        )
    indicator = spec.indicator.spec if spec.indicator is not None else None
    if indicator is None and spec.indicatorRef is not None:
        indicator = slis.get(spec.indicatorRef)
        if indicator is None:
            return fail(
                ("spec", "indicatorRef"), f'no SLI named "{spec.indicatorRef}" in the input'
            )
    if indicator is None:
        return fail(("spec",), "indicator or indicatorRef is required")
    sli, problem = _sli(indicator)
    if problem is not None:
        location = ("spec", "indicator") if spec.indicator is not None else ("spec", "indicatorRef")
        return fail(location, problem)
    labels = {
        key: value if isinstance(value, str) else ",".join(value)
        for key, value in slo.metadata.labels.items()
    }
    entries = []
    for index, objective in enumerate(spec.objectives):
        where: Location = ("spec", "objectives", index)
        if objective.indicator is not None or objective.indicatorRef is not None:
            return fail(where, "composite SLOs (an indicator per objective) are not supported")
        if (objective.target is None) == (objective.targetPercent is None):
            return fail(where, "exactly one of target (0-1) and targetPercent (0-100) is required")
        percent = (
            objective.targetPercent
            if objective.targetPercent is not None
            else (objective.target or 0.0) * 100
        )
        if not 0 < percent < 100:
            return fail(
                (*where, "target" if objective.target is not None else "targetPercent"),
                f"must be above 0 and below 100 percent, got {percent:g}",
            )
        name = slo.metadata.name if len(spec.objectives) == 1 else f"{slo.metadata.name}-{index}"
        entries.append(
            {
                "name": name,
                "objective": percent,
                "description": spec.description,
                "labels": labels,
                "sli": sli,
                "alerting": {"name": f"{_pascal(name)}BurnRate"},
            }
        )
        translation.origins.append(where)
    translation.service_level = {"service": spec.service, "slos": entries}
    translation.period = window.duration
    translation.period_location = ("spec", "timeWindow", 0, "duration")
    return translation


def _query(ref: MetricRef) -> str | None:
    source = ref.metricSource
    if source.type is not None and source.type.lower() != "prometheus":
        return None
    query = source.spec.get("query")
    return query if isinstance(query, str) and query.strip() else None


def _sli(indicator: SLISpec) -> tuple[dict[str, Any], str | None]:
    ratio = indicator.ratioMetric
    if ratio is None:
        return {}, "only ratioMetric SLIs are supported (thresholdMetric is not)"
    parts = {name: getattr(ratio, name) for name in ("good", "bad", "total", "raw")}
    queries = {name: _query(ref) for name, ref in parts.items() if ref is not None}
    missing = sorted(name for name, query in queries.items() if query is None)
    if missing:
        return {}, (f"{', '.join(missing)}: a Prometheus metricSource with spec.query is required")
    if "raw" in queries:
        if ratio.rawType is None:
            return {}, "rawType (success or failure) is required with raw"
        query = queries["raw"]
        assert query is not None
        error_ratio = query if ratio.rawType == "failure" else f"1 - (\n{query}\n)"
        return {"raw": {"error_ratio_query": error_ratio}}, None
    if "total" not in queries or ("good" in queries) == ("bad" in queries):
        return {}, "ratioMetric needs total and exactly one of good and bad (or raw)"
    total = queries["total"]
    if "bad" in queries:
        return {"events": {"error_query": queries["bad"], "total_query": total}}, None
    # Sloth's OpenSLO import does the same: good/total becomes a raw error ratio.
    ratio_query = f"1 - (\n({queries['good']})\n/\n({total})\n)"
    return {"raw": {"error_ratio_query": ratio_query}}, None
