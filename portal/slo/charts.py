"""Chart data of the SLO detail page, from two range queries, embedded in the page as JSON.

One query fetches every SLI error ratio window of the SLO; it becomes one burn-rate chart
per alert condition (its short and long window, with the condition's factor drawn as a
threshold line). The other fetches the budget remaining for the burn-down chart.
``portal/ui/static/slo-charts.js`` draws them with uPlot; the page's tables carry the
same numbers for readers without JavaScript.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

from markupsafe import Markup

from portal.integrations.prometheus import Prometheus, Series
from portal.slo.burn import SLI_PREFIX, Condition, error_budget
from portal.slo.compiler.promql import go_quote

RANGES: Mapping[str, int] = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}
DEFAULT_RANGE = "1d"
POINTS = 240  # per series: enough for a chart, small enough for a fast page


@dataclass(frozen=True)
class ChartSeries:
    """One line: its label, values aligned with the chart's x, and how to draw it."""

    label: str
    values: list[float | None]
    role: str  # short, long, threshold, budget, zero


@dataclass(frozen=True)
class Chart:
    """One chart: unix-second x values and the series drawn over them."""

    id: str
    title: str
    unit: str
    x: list[float]
    series: list[ChartSeries] = field(default_factory=list)
    start: float | None = None  # the range asked for, so one point is not a whole axis
    end: float | None = None

    @property
    def has_data(self) -> bool:
        """True when a data series (not a threshold line) has a value."""
        return any(
            value is not None
            for line in self.series
            if line.role not in ("threshold", "zero")
            for value in line.values
        )


def step_for(seconds: int) -> float:
    """Return the query step giving about :data:`POINTS` points over ``seconds`` (at least 1 s)."""
    return max(1.0, math.ceil(seconds / POINTS))


def selector(metric_regex: str, sloth_id: str) -> str:
    """Write a selector on ``__name__`` (a regex) and one ``sloth_id``."""
    return f"{{__name__=~{go_quote(metric_regex)}, sloth_id={go_quote(sloth_id)}}}"


def sli_range_query(sloth_id: str) -> str:
    """Write the range query of every SLI error ratio window of one SLO."""
    return selector(SLI_PREFIX + ".+", sloth_id)


def budget_range_query(sloth_id: str) -> str:
    """Write the range query of one SLO's budget remaining."""
    return selector("slo:period_error_budget_remaining:ratio", sloth_id)


def _by_window(series: Sequence[Series]) -> dict[str, dict[float, float]]:
    found: dict[str, dict[float, float]] = {}
    for line in series:
        window = line.labels.get("sloth_window") or line.labels.get("__name__", "").removeprefix(
            SLI_PREFIX
        )
        found.setdefault(window, {}).update(
            (at, value) for at, value in line.points if math.isfinite(value)
        )
    return found


def burn_charts(
    series: Sequence[Series], conditions: Sequence[Condition], objective: float
) -> list[Chart]:
    """One chart per alert condition: the burn of its two windows and its factor."""
    windows = _by_window(series)
    budget = error_budget(objective)
    charts = []
    for index, condition in enumerate(conditions):
        short, long = windows.get(condition.short, {}), windows.get(condition.long, {})
        xs = sorted(set(short) | set(long))
        threshold: list[float | None] = [condition.factor] * len(xs)

        def burns(points: dict[float, float], xs: list[float] = xs) -> list[float | None]:
            return [points[x] / budget if x in points else None for x in xs]

        charts.append(
            Chart(
                id=f"burn-{index}",
                title=f"{condition.severity.value} {condition.speed}: "
                f"{condition.short} and {condition.long} over {condition.factor:g}x",
                unit="x",
                x=xs,
                series=[
                    ChartSeries(f"burn {condition.short}", burns(short), "short"),
                    ChartSeries(f"burn {condition.long}", burns(long), "long"),
                    ChartSeries(f"threshold {condition.factor:g}x", threshold, "threshold"),
                ],
            )
        )
    return charts


def budget_chart(series: Sequence[Series]) -> Chart:
    """Build the budget burn-down: percent of the error budget left, with the zero line."""
    points: dict[float, float] = {}
    for line in series:
        points.update((at, value) for at, value in line.points if math.isfinite(value))
    xs = sorted(points)
    return Chart(
        id="budget",
        title="Error budget remaining",
        unit="%",
        x=xs,
        series=[
            ChartSeries("budget remaining", [points[x] * 100 for x in xs], "budget"),
            ChartSeries("exhausted", [0.0] * len(xs), "zero"),
        ],
    )


def fetch_charts(
    prometheus: Prometheus,
    sloth_id: str,
    conditions: Sequence[Condition],
    objective: float,
    *,
    start: float,
    end: float,
) -> list[Chart]:
    """Run the two range queries and build the burn and burn-down charts."""
    step = step_for(int(end - start))
    sli = prometheus.query_range(sli_range_query(sloth_id), start, end, step)
    remaining = prometheus.query_range(budget_range_query(sloth_id), start, end, step)
    charts = [*burn_charts(sli, conditions, objective), budget_chart(remaining)]
    return [replace(chart, start=start, end=end) for chart in charts]


def charts_json(charts: Sequence[Chart]) -> Markup:
    """Encode the charts as JSON safe inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` are escaped so no label can close the script element.
    """
    text = json.dumps({"charts": [asdict(chart) for chart in charts]}, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped above; JSON, not HTML)
