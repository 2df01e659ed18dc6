"""What ``/cost/{service}`` and ``GET /api/cost/{service}`` show about one service (pure).

Given what was gathered (measured days, the estimate of main, token counts, the request
total of an SLO and the right-sizing advice), this module computes and writes the figures:

- **breakdown**: the window's cost per environment and resource (CPU, memory, GPU,
  persistent volumes), summed from the measured days; without measured days, the monthly
  estimate of main per environment (CPU and memory), labelled as an estimate;
- **request vs usage**: per day, the average cores and GiB requested and used (the day's
  request and usage hours / 24), summed over the service's workloads; a day without a
  usage series has no usage point (a gap, never a zero);
- **unit cost**: the window's measured cost / (the SLO's request total over the same
  window, in millions);
- **token cost**: :mod:`portal.cost.tokens`.

Amounts are written here only, as strings of cents (``cents``), so no float touches money;
the chart's values are strings too, read by the page's script.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel

from portal.cost.estimate import SOURCE as ESTIMATE_SOURCE
from portal.cost.estimate import ServiceCost
from portal.cost.measured import DayCost
from portal.cost.model import cents
from portal.cost.rightsizing import Recommendation, ResourceAdvice, quantity
from portal.cost.tokens import TokenCost
from portal.slo.compiler.resolve import ResolvedSLO

MILLION = Decimal(1_000_000)
HOURS_PER_DAY = Decimal(24)
RESOURCES = ("cpu", "memory", "gpu", "pv")


class ResourceRow(BaseModel):
    """One environment's cost (or all of them: ``environment`` "all"), per resource."""

    environment: str
    currency: str
    cpu: str
    memory: str
    gpu: str | None  # None: the estimate has no GPU / PV split
    pv: str | None
    total: str
    error: str | None = None


class Breakdown(BaseModel):
    """The cost per environment and resource, where it comes from and over what."""

    kind: str  # "measured", "estimate" or "none"
    source: str  # "measured by Prometheus", "estimate from manifests on main", ...
    period: str  # "2024-05-01 to 2024-05-30" or "per month"
    rows: list[ResourceRow]
    total: ResourceRow | None  # None with several currencies, or nothing to sum


class ChartLine(BaseModel):
    """One line of the request-vs-usage chart: values aligned with the chart's days."""

    label: str
    role: str  # request or usage
    values: list[str | None]


class Chart(BaseModel):
    """A daily chart: days as unix seconds (UTC midnight), and its lines."""

    id: str
    title: str
    unit: str
    x: list[int]
    series: list[ChartLine]

    @property
    def has_data(self) -> bool:
        """True when a line has a value."""
        return any(value is not None for line in self.series for value in line.values)


class UnitCost(BaseModel):
    """Cost per million requests, or why there is none."""

    per_million: str | None = None
    currency: str | None = None
    requests: str | None = None  # the request total over the window
    slo: str | None = None  # the SLO whose total query counted them
    reason: str | None = None


class TokenRow(BaseModel):
    """Tokens of one model and kind in one environment, and their cost (or why none)."""

    environment: str
    model: str
    kind: str
    tokens: str
    price_per_million: str | None
    cost: str | None
    currency: str | None
    problem: str | None


class TokenView(BaseModel):
    """The service's token cost over the window, or why it is not known."""

    rows: list[TokenRow] = []
    totals: dict[str, str] = {}
    reason: str | None = None


class AdviceView(BaseModel):
    """One resource of a container: current request, p95, new request, saving, why."""

    resource: str
    current: str | None
    p95: str | None
    recommended: str | None
    monthly_saving: str
    reason: str


class RecommendationRow(BaseModel):
    """One container in one environment and what right-sizing says of it."""

    environment: str
    container: str
    workload: str | None
    replicas: int | None
    replicas_note: str
    currency: str
    proposed: bool
    monthly_saving: str
    advice: list[AdviceView]
    reason: str | None


def _money(amount: Decimal) -> str:
    return f"{cents(amount)}"


def _sum(days: Iterable[DayCost], attribute: str) -> Decimal:
    return sum((getattr(day, attribute) for day in days), Decimal(0))


def _row(environment: str, days: Sequence[DayCost], currency: str) -> ResourceRow:
    return ResourceRow(
        environment=environment,
        currency=currency,
        cpu=_money(_sum(days, "cpu")),
        memory=_money(_sum(days, "memory")),
        gpu=_money(_sum(days, "gpu")),
        pv=_money(_sum(days, "pv")),
        total=_money(_sum(days, "total")),
    )


def in_window(days: Iterable[DayCost], first: date, last: date) -> list[DayCost]:
    """Return the days from ``first`` to ``last`` (inclusive)."""
    return [day for day in days if first <= day.day <= last]


def measured_breakdown(days: Sequence[DayCost], first: date, last: date, source: str) -> Breakdown:
    """Sum the window's measured days per environment and resource, and over all of them."""
    environments = sorted({day.workload.environment for day in days})
    rows = []
    for environment in environments:
        mine = [day for day in days if day.workload.environment == environment]
        rows.append(_row(environment or "-", mine, ", ".join(sorted({d.currency for d in mine}))))
    currencies = {day.currency for day in days}
    # Summing two currencies would be a wrong number: the total is left out instead.
    total = _row("all", days, currencies.pop()) if len(currencies) == 1 else None
    return Breakdown(
        kind="measured",
        source=f"measured by {source}",
        period=f"{first} to {last}",
        rows=rows,
        total=total,
    )


def estimate_breakdown(cost: ServiceCost | None) -> Breakdown:
    """Write the monthly estimate of main per environment (CPU and memory), or nothing."""
    if cost is None:
        return Breakdown(kind="none", source="no cost data", period="", rows=[], total=None)
    rows = [
        ResourceRow(
            environment=env.environment,
            currency=env.currency,
            cpu=_money(env.cpu),
            memory=_money(env.memory),
            gpu=None,
            pv=None,
            total=_money(env.monthly),
            error=env.error,
        )
        for env in cost.environments
    ]
    currencies = {env.currency for env in cost.environments if env.error is None}
    total = None
    if len(currencies) == 1:
        total = ResourceRow(
            environment="all",
            currency=currencies.pop(),
            cpu=_money(cost.cpu),
            memory=_money(cost.memory),
            gpu=None,
            pv=None,
            total=_money(cost.monthly),
        )
    return Breakdown(
        kind="estimate", source=ESTIMATE_SOURCE, period="per month", rows=rows, total=total
    )


def _epoch(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86400


def _average(hours: Decimal | None) -> str | None:
    # A day's resource-hours / 24 is the average amount held over the day; three decimals
    # are plenty for a chart and keep the JSON small.
    return None if hours is None else f"{(hours / HOURS_PER_DAY).quantize(Decimal('0.001'))}"


def _daily(
    days: Sequence[DayCost], span: Sequence[date], attribute: str, usage: bool
) -> list[str | None]:
    values: list[str | None] = []
    for when in span:
        mine = [day for day in days if day.day == when]
        amounts = [getattr(day, attribute) for day in mine]
        if not mine or (usage and any(amount is None for amount in amounts)):
            values.append(None)  # no data, or a workload without usage: no honest sum
        else:
            values.append(_average(sum(amounts, Decimal(0))))
    return values


def request_usage_charts(days: Sequence[DayCost], first: date, last: date) -> list[Chart]:
    """Return the daily CPU (cores) and memory (GiB) charts: average requested and used."""
    span = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    x = [_epoch(day) for day in span]
    charts = []
    for resource, unit, title in (
        ("cpu", "cores", "CPU: requested and used (daily average, cores)"),
        ("memory", "GiB", "Memory: requested and used (daily average, GiB)"),
    ):
        hours = "core_hours" if resource == "cpu" else "gib_hours"
        request = _daily(days, span, f"{resource}_request_{hours}", usage=False)
        used = _daily(days, span, f"{resource}_usage_{hours}", usage=True)
        charts.append(
            Chart(
                id=f"cost-{resource}",
                title=title,
                unit=unit,
                x=x,
                series=[
                    ChartLine(label="requested", role="request", values=request),
                    ChartLine(label="used", role="usage", values=used),
                ],
            )
        )
    return charts


def unit_cost(
    cost: Decimal, currency: str | None, requests: Decimal | None, slo: str | None
) -> UnitCost:
    """Cost per million requests; a reason instead when no requests were counted."""
    if requests is None:
        return UnitCost(slo=slo, reason=f"the SLO {slo} has no request series in this window")
    if requests <= 0:
        return UnitCost(
            slo=slo, requests=f"{requests}", reason="no requests in this window: no unit cost"
        )
    per_million = cost / (requests / MILLION)
    return UnitCost(
        per_million=_money(per_million),
        currency=currency,
        requests=f"{requests.to_integral_value()}",
        slo=slo,
    )


def token_view(cost: TokenCost) -> TokenView:
    """Write a priced token count for the page and the API."""
    return TokenView(
        rows=[
            TokenRow(
                environment=line.environment or "-",
                model=line.model,
                kind=line.kind,
                tokens=f"{line.tokens.to_integral_value()}",
                price_per_million=None
                if line.price_per_million is None
                else f"{line.price_per_million}",
                cost=None if line.cost is None else _money(line.cost),
                currency=line.currency,
                problem=line.problem,
            )
            for line in cost.lines
        ],
        totals={currency: _money(total) for currency, total in sorted(cost.totals.items())},
    )


def _advice(advice: ResourceAdvice) -> AdviceView:
    def written(amount: Decimal | None) -> str | None:
        return None if amount is None else quantity(advice.resource, amount)

    return AdviceView(
        resource=advice.resource,
        current=written(advice.current),
        p95=written(advice.p95),
        recommended=written(advice.recommended),
        monthly_saving=_money(advice.monthly_saving),
        reason=advice.reason,
    )


def recommendation_rows(recommendations: Iterable[Recommendation]) -> list[RecommendationRow]:
    """Write the right-sizing advice for the page and the API."""
    return [
        RecommendationRow(
            environment=item.environment,
            container=item.container,
            workload=f"{item.deployed.kind}/{item.deployed.name}" if item.deployed else None,
            replicas=item.deployed.replicas if item.deployed else None,
            replicas_note=item.deployed.replicas_note if item.deployed else "",
            currency=item.currency,
            proposed=item.proposed,
            monthly_saving=_money(item.monthly_saving),
            advice=[_advice(advice) for advice in item.advice],
            reason=item.reason,
        )
        for item in recommendations
    ]


def pick_request_slo(slos: Sequence[ResolvedSLO]) -> ResolvedSLO | None:
    """Return the SLO whose total counts the service's requests, None when none can.

    An event-based SLO whose total query is a rate of counters (:func:`request_counter`)
    gives a total over any window; one named for requests (``requests-availability``) is
    preferred over others (a freshness check counts checks, not requests).
    """
    usable = [slo for slo in slos if request_counter(slo) is not None]
    named = [slo for slo in usable if "request" in slo.name]
    found = named or usable
    return found[0] if found else None


_WINDOW = "__portal_window__"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_MATCHERS = rf"\{{(?:[^{{}}\"]|{_QUOTED})*\}}"
_SELECTOR = rf"(?:[A-Za-z_:][A-Za-z0-9_:]*\s*(?:{_MATCHERS})?|{_MATCHERS})"
_RATE = re.compile(rf"\b(?:rate|irate|increase)\(\s*(?P<selector>{_SELECTOR})\s*\[{_WINDOW}\]\s*\)")
_SUM_OF_ONE = re.compile(rf"^\s*sum\s*\(\s*(?P<selector>{_SELECTOR})\s*\)\s*$")


def request_counter(slo: ResolvedSLO) -> str | None:
    """Return the counter expression whose increase is the SLO's total, None if none is.

    A total query is a rate of counters over ``{{.window}}``: with each ``rate(c[{{.window}}])``
    replaced by the counter ``c`` it counts events instead (``sum(rate(c[...]))`` becomes the
    plain selector ``c``, whose increase Prometheus computes exactly). A query that is not
    only rates of counters (``avg_over_time``, an ``offset``) gives None: no request total.
    """
    if slo.total_query is None:
        return None
    counters = _RATE.sub(lambda match: match["selector"], slo.total_query.render(_WINDOW))
    if _WINDOW in counters:
        return None
    plain = _SUM_OF_ONE.match(counters)
    return plain["selector"].strip() if plain else counters.strip()
