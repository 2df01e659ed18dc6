"""OpenSLO indicators (SLIs) checked and written as Sloth SLIs, per budgeting method.

An SLI is usable when its metrics are Prometheus queries (``metricSource.type`` Prometheus
or unset, ``spec.query`` PromQL). The parts of a ``ratioMetric`` must use ``{{.window}}``
in their ranges: a ratio that cannot be windowed would give every alert window the same
value, so the burn rates would mean nothing. A ``thresholdMetric`` query may be windowed
or instant (a gauge).

- ``Occurrences`` counts events: ``bad``/``total`` become Sloth events, ``good``/``total``
  and ``raw`` an error ratio query (as Sloth's own OpenSLO import does). A threshold metric
  has no events to count and is refused.
- ``Timeslices`` splits time into slices of ``timeSliceWindow``: a slice is good when its
  ratio reaches ``timeSliceTarget`` (a threshold metric: when the share of its samples
  meeting ``op value`` does), and the error ratio over a window is the share of bad
  slices, a PromQL subquery ``[{{.window}}:<slice>]``.
- ``RatioTimeslices`` averages the slices' ratios over the window (ratio metrics only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from portal.slo.compiler.errors import Location
from portal.slo.compiler.promql import format_duration, go_float, parse_duration
from portal.slo.compiler.resolve import compile_query

OCCURRENCES = "Occurrences"
TIMESLICES = "Timeslices"
RATIO_TIMESLICES = "RatioTimeslices"
BUDGETING_METHODS = (OCCURRENCES, TIMESLICES, RATIO_TIMESLICES)
OPERATORS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}

Problem = tuple[Location, str]


class _Open(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricSource(_Open):
    """Where a metric comes from: only Prometheus queries (``spec.query``) are understood."""

    metricSourceRef: str | None = None  # noqa: N815 (OpenSLO's field names)
    type: str | None = None
    spec: dict[str, Any] | None = None


class MetricRef(_Open):
    """A ``good``, ``bad``, ``total`` or ``raw`` part of a ratio, or a threshold metric."""

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
    """An indicator: exactly one of ``ratioMetric`` and ``thresholdMetric``."""

    description: str | None = None
    thresholdMetric: MetricRef | None = None  # noqa: N815
    ratioMetric: RatioMetric | None = None  # noqa: N815


class Objective(_Open):
    """One objective: ``target`` (0-1) or ``targetPercent`` (0-100), and its slices."""

    displayName: str | None = None  # noqa: N815
    op: str | None = None
    value: float | None = None
    target: float | None = None
    targetPercent: float | None = None  # noqa: N815
    timeSliceTarget: float | None = None  # noqa: N815
    timeSliceWindow: str | None = None  # noqa: N815
    indicator: dict[str, Any] | None = None
    indicatorRef: str | None = None  # noqa: N815
    compositeWeight: float | None = None  # noqa: N815


@dataclass(frozen=True)
class CheckedSLI:
    """The PromQL of a usable SLI: ratio parts by name, or a threshold query."""

    ratio: dict[str, str]
    raw_type: str | None = None
    threshold: str | None = None


def _query(
    ref: MetricRef,
    where: Location,
    windowed: bool,
    sources: Mapping[str, str | None],
    problems: list[Problem],
) -> str | None:
    source = ref.metricSource
    kind = source.type
    if kind is None and source.metricSourceRef is not None:
        if source.metricSourceRef not in sources:
            problems.append(
                (
                    (*where, "metricSource", "metricSourceRef"),
                    f'no DataSource named "{source.metricSourceRef}" in the input to tell its '
                    "type: add it, or set type: Prometheus",
                )
            )
            return None
        kind = sources[source.metricSourceRef]
    if kind is not None and kind.lower() != "prometheus":
        problems.append(
            (
                (*where, "metricSource", "type" if source.type else "metricSourceRef"),
                f'"{kind}" is not supported: only Prometheus queries become Prometheus rules',
            )
        )
        return None
    query = (source.spec or {}).get("query")
    location = (*where, "metricSource", "spec", "query")
    if not isinstance(query, str) or not query.strip():
        problems.append((location, "required: the PromQL query"))
        return None
    try:
        template = compile_query(query)
    except ValueError as error:
        problems.append((location, str(error)))
        return None
    if windowed and not template.uses_window:
        problems.append(
            (
                location,
                "has no {{.window}}: a ratio's queries must be windowed (e.g. "
                "rate(x[{{.window}}])), or every alert window would get the same value",
            )
        )
        return None
    return query


def check_sli(
    spec: SLISpec, sources: Mapping[str, str | None]
) -> tuple[CheckedSLI | None, list[Problem]]:
    """Check an SLI whatever the budgeting method; locations are relative to its ``spec``.

    ``sources`` maps the DataSource objects of the input to their ``type``.
    """
    problems: list[Problem] = []
    if (spec.ratioMetric is None) == (spec.thresholdMetric is None):
        return None, [((), "exactly one of ratioMetric and thresholdMetric is required")]
    if spec.thresholdMetric is not None:
        query = _query(spec.thresholdMetric, ("thresholdMetric",), False, sources, problems)
        return (CheckedSLI({}, threshold=query) if query else None), problems
    ratio = spec.ratioMetric
    assert ratio is not None
    parts = {name: getattr(ratio, name) for name in ("good", "bad", "total", "raw")}
    given = {name for name, ref in parts.items() if ref is not None}
    where: Location = ("ratioMetric",)
    if "raw" in given:
        if given != {"raw"}:
            problems.append((where, "raw cannot be combined with good, bad or total"))
        if ratio.rawType is None:
            problems.append(((*where, "rawType"), "required with raw (success or failure)"))
    elif "total" not in given or len(given & {"good", "bad"}) != 1:
        problems.append((where, "needs total and exactly one of good and bad (or raw)"))
    queries = {
        name: _query(ref, (*where, name), True, sources, problems)
        for name, ref in parts.items()
        if ref is not None
    }
    if problems:
        return None, problems
    checked = {name: query for name, query in queries.items() if query is not None}
    return CheckedSLI(checked, raw_type=ratio.rawType), []


def objective_problems(sli: SLISpec, budgeting: str, objective: Objective) -> list[Problem]:
    """List what an objective lacks for its budgeting method (locations relative to it)."""
    problems: list[Problem] = []
    if budgeting in (TIMESLICES, RATIO_TIMESLICES):
        if objective.timeSliceWindow is None:
            problems.append((("timeSliceWindow",), f"required with budgetingMethod {budgeting}"))
        else:
            try:
                if parse_duration(objective.timeSliceWindow) <= 0:
                    problems.append((("timeSliceWindow",), "must be longer than 0"))
            except ValueError as error:
                problems.append((("timeSliceWindow",), str(error)))
    if budgeting == TIMESLICES:
        target = objective.timeSliceTarget
        if target is None:
            problems.append((("timeSliceTarget",), f"required with budgetingMethod {budgeting}"))
        elif not 0 < target <= 1:
            problems.append(
                (("timeSliceTarget",), f"must be above 0 and at most 1, got {target:g}")
            )
    if sli.thresholdMetric is not None and budgeting == TIMESLICES:
        if objective.op not in OPERATORS:
            problems.append(
                (("op",), f"required with a thresholdMetric: one of {', '.join(OPERATORS)}")
            )
        if objective.value is None:
            problems.append((("value",), "required with a thresholdMetric"))
    return problems


def method_problem(sli: SLISpec, budgeting: str) -> str | None:
    """Tell why an SLI cannot be budgeted this way (None when it can)."""
    if sli.thresholdMetric is None:
        return None
    if budgeting == OCCURRENCES:
        return (
            "a thresholdMetric has no events to count: Occurrences budgeting needs a "
            "ratioMetric (or use budgetingMethod Timeslices)"
        )
    if budgeting == RATIO_TIMESLICES:
        return "RatioTimeslices averages the slices' good/total ratios: it needs a ratioMetric"
    return None


def _success_ratio(sli: CheckedSLI, window: str) -> str:
    """Write the share of good events over ``window`` (a slice)."""
    q = {name: compile_query(query).render(window) for name, query in sli.ratio.items()}
    if "raw" in q:
        return f"({q['raw']})" if sli.raw_type == "success" else f"(1 - ({q['raw']}))"
    if "good" in q:
        return f"(({q['good']})\n/\n({q['total']}))"
    return f"(1 - ({q['bad']})\n/\n({q['total']}))"


def sloth_sli(sli: CheckedSLI, budgeting: str, objective: Objective) -> dict[str, Any]:
    """Write the Sloth SLI (events or raw error ratio) of a checked SLI and objective."""
    if budgeting == OCCURRENCES:
        ratio = sli.ratio
        if "raw" in ratio:
            raw = ratio["raw"]
            return {
                "raw": {
                    "error_ratio_query": raw if sli.raw_type == "failure" else f"1 - (\n{raw}\n)"
                }
            }
        if "bad" in ratio:
            return {"events": {"error_query": ratio["bad"], "total_query": ratio["total"]}}
        # Sloth's OpenSLO import does the same: good/total becomes a raw error ratio.
        query = f"1 - (\n({ratio['good']})\n/\n({ratio['total']})\n)"
        return {"raw": {"error_ratio_query": query}}
    assert objective.timeSliceWindow is not None
    slice_window = format_duration(parse_duration(objective.timeSliceWindow))
    if sli.threshold is not None:
        assert objective.op is not None
        assert objective.value is not None
        point = compile_query(sli.threshold).render(slice_window)
        good = f"({point}) {OPERATORS[objective.op]} bool {go_float(objective.value)}"
        target = go_float(objective.timeSliceTarget or 1.0)
        slice_good = f"avg_over_time(({good})[{slice_window}:]) >= bool {target}"
    elif budgeting == TIMESLICES:
        target = go_float(objective.timeSliceTarget or 1.0)
        slice_good = f"{_success_ratio(sli, slice_window)} >= bool {target}"
    else:
        slice_good = _success_ratio(sli, slice_window)
    query = f"1 - avg_over_time((\n{slice_good}\n)[{{{{.window}}}}:{slice_window}])"
    return {"raw": {"error_ratio_query": query}}
