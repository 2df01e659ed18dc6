"""The ``/cost/{service}`` page and ``GET /api/cost/{service}``: one service's cost and advice.

The routes parse the request, gather what the page shows (:func:`service_cost`, the one
place that asks the cost runtime, the usage metrics, the SLO index and the GitOps
repository) and render it. Every source that is missing or fails becomes a reason on the
page, with status 200; only a service nobody knows (no folder on main, no measured days)
is a 404.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Protocol, runtime_checkable

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel

from portal.api_errors import error_responses
from portal.auth.identity import Identity
from portal.auth.tokens import SERVICE_NAME, service_owner
from portal.cost.deployed import Advice, DeployedCache, gather_advice
from portal.cost.estimate import CostIndex
from portal.cost.measured import DayCost, Measured
from portal.cost.model import Prices
from portal.cost.rightsizing import DEFAULT_POLICY, WINDOW_DAYS
from portal.cost.service import (
    Breakdown,
    Chart,
    RecommendationRow,
    TokenView,
    UnitCost,
    estimate_breakdown,
    in_window,
    measured_breakdown,
    pick_request_slo,
    recommendation_rows,
    request_counter,
    request_usage_charts,
    token_view,
    unit_cost,
)
from portal.cost.tokens import LLMPriceError, price_tokens, read_llm_prices
from portal.cost.usage_answers import UsageAnswers
from portal.cost.windows import DEFAULT_WINDOW, WINDOWS, WindowError, parse_window, window_range
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep, from_app_state
from portal.integrations.cost_metrics import CostSourceError, UsageMetrics
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.slo.routes import SloDep
from portal.slo.runtime import SLORuntime
from portal.ui.render import page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/cost", tags=["cost"])
NO_METRICS = "no usage metrics: this needs Prometheus (PORTAL_PROMETHEUS_URL)"
# Builds of a service's overlays, per commit: shared by the page and the proposal.
DEPLOYED = DeployedCache()
# The usage metrics' answers of the service page, per service and window, for minutes.
USAGE = UsageAnswers()


@runtime_checkable
class ServiceCostRuntime(Protocol):
    """What the service page needs of the app's cost runtime (``portal.cost.runtime``)."""

    usage_metrics: UsageMetrics | None

    def index(self) -> CostIndex:
        """Return the estimate of main."""
        ...

    def measured(self, window_days: int = 30) -> Measured:
        """Return the measured days covering a ``window_days`` window."""
        ...

    def prices(self, environment: str) -> Prices:
        """Return an environment's prices; raise ``PriceSheetError`` when unreadable."""
        ...

    def today(self) -> date:
        """Return today's UTC date by the runtime's clock."""
        ...


service_cost_runtime = from_app_state("cost", ServiceCostRuntime)  # type: ignore[type-abstract]
ServiceCostDep = Annotated[ServiceCostRuntime, Depends(service_cost_runtime)]


class ServiceCostView(BaseModel):
    """Everything ``/cost/{service}`` shows; amounts are strings of cents."""

    service: str
    team: str | None
    window: str
    first: date
    last: date
    measured: Breakdown
    estimate: Breakdown
    charts: list[Chart]
    unit_cost: UnitCost
    tokens: TokenView
    recommendations: list[RecommendationRow]
    rightsizing_reason: str | None
    commit: str | None
    problems: list[str]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _main_commit(index: CostIndex, gitops: GitOpsRepo) -> str:
    # The commit the estimate was built on, so the page's figures and advice agree; without
    # one (the estimate could not read main), main as the remote has it now.
    return index.commit or gitops.refresh()


def _tokens(
    metrics: UsageMetrics | None,
    gitops: GitOpsRepo | None,
    commit: str | None,
    service: str,
    start: datetime,
    end: datetime,
) -> TokenView:
    if metrics is None:
        return TokenView(reason=NO_METRICS)
    try:
        counts = [c for c in metrics.token_counts(start, end) if c.workload.service == service]
    except (CostSourceError, OSError, ValueError) as error:
        return TokenView(reason=f"usage metrics ({metrics.url}): {error}")
    if not counts:
        return TokenView(reason="no LLM tokens counted (llm_tokens_total) in this window")
    if gitops is None or commit is None:
        return TokenView(reason="the LLM price table cannot be read: no GitOps repository")
    try:
        table = read_llm_prices(gitops, commit)
    except (LLMPriceError, GitError, OSError) as error:
        return TokenView(reason=f"the LLM price table cannot be used: {error}")
    return token_view(price_tokens(counts, table))


def _unit_cost(
    metrics: UsageMetrics | None,
    slo: SLORuntime,
    service: str,
    days: list[DayCost],
    start: datetime,
    end: datetime,
) -> UnitCost:
    if not days:
        return UnitCost(reason="no measured cost in this window")
    currencies = {day.currency for day in days}
    if len(currencies) > 1:
        return UnitCost(reason="the environments are priced in different currencies")
    # Exact amounts (the breakdown's are rounded to cents).
    cost, currency = sum((day.total for day in days), Decimal(0)), currencies.pop()
    if metrics is None:
        return UnitCost(reason=NO_METRICS)
    chosen = pick_request_slo([entry.slo for entry in slo.slo_index().for_service(service)])
    if chosen is None:
        return UnitCost(reason=f"{service} has no SLO whose total query counts requests")
    counter = request_counter(chosen)
    assert counter is not None  # pick_request_slo keeps only SLOs that have one
    try:
        requests = metrics.increase(counter, start, end)
    except (CostSourceError, OSError, ValueError) as error:
        return UnitCost(slo=chosen.name, reason=f"usage metrics ({metrics.url}): {error}")
    return unit_cost(cost, currency, requests, chosen.name)


def service_cost(
    runtime: ServiceCostRuntime,
    slo: SLORuntime,
    gitops: GitOpsRepo | None,
    service: str,
    window: str,
) -> ServiceCostView | None:
    """Gather the page of ``service`` over ``window``; None when the service is unknown."""
    days_count = parse_window(window)
    index = runtime.index()
    estimate = next((s for s in index.services if s.service == service), None)
    measured = runtime.measured(days_count)
    all_days = measured.service_days(service)
    if estimate is None and not all_days:
        return None
    first, last = window_range(runtime.today(), days_count)
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    days = in_window(all_days, first, last)
    problems = [*measured.errors, *index.problems, *(estimate.errors if estimate else [])]
    source = measured.source_of(service) or "a measured source"
    breakdown = (
        measured_breakdown(days, first, last, source)
        if days
        else Breakdown(
            kind="none", source="not measured", period=f"{first} to {last}", rows=[], total=None
        )
    )
    commit: str | None = None
    metrics = USAGE.wrap(runtime.usage_metrics)  # kept a few minutes per service and window
    advice = Advice(reason="the GitOps repository cannot be read")
    if gitops is not None:
        try:
            commit = _main_commit(index, gitops)
            deployed = DEPLOYED.get(gitops, service, commit)
            advice = gather_advice(
                metrics, runtime.prices, deployed, runtime.today(), DEFAULT_POLICY
            )
        except (GitError, OSError) as error:
            problems.append(f"GitOps repository: {error}")
    problems.extend(advice.problems)
    return ServiceCostView(
        service=service,
        team=estimate.team if estimate else None,
        window=window,
        first=first,
        last=last,
        measured=breakdown,
        estimate=estimate_breakdown(estimate),
        charts=request_usage_charts(days, first, last) if days else [],
        unit_cost=_unit_cost(metrics, slo, service, days, start, end),
        tokens=_tokens(metrics, gitops, commit, service, start, end),
        recommendations=recommendation_rows(advice.recommendations),
        rightsizing_reason=advice.reason,
        commit=commit,
        problems=problems,
    )


def may_propose(identity: Identity | None, owner: str | None, admin_group: str) -> bool:
    """Return True when ``identity`` is a person who may propose changes to ``owner``'s services."""
    if identity is None or identity.token is not None or owner is None:
        return False
    return identity.is_member(owner) or identity.is_admin(admin_group)


def _gitops(changes: ChangesDep) -> GitOpsRepo | None:
    try:
        return changes.request_gitops()
    except (GitError, OSError):
        return None  # the page says the repository cannot be read, with what it has


def _view(
    runtime: ServiceCostRuntime, slo: SLORuntime, changes: ChangesDep, service: str, window: str
) -> ServiceCostView:
    if not SERVICE_NAME.fullmatch(service):
        raise HTTPException(404, f"{service!r} is not a service name")
    try:
        view = service_cost(runtime, slo, _gitops(changes), service, window)
    except WindowError as error:
        raise HTTPException(422, str(error)) from error
    if view is None:
        raise HTTPException(
            404, f"no service {service}: no folder on the GitOps main and no measured cost"
        )
    return view


def charts_json(charts: list[Chart]) -> Markup:
    """Encode the charts as JSON safe inside ``<script type="application/json">``."""
    text = json.dumps({"charts": [chart.model_dump() for chart in charts]})
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped above; JSON, not HTML)


@router.get("/cost/{service}", response_class=HTMLResponse)
def service_cost_page(
    request: Request,
    runtime: ServiceCostDep,
    slo: SloDep,
    changes: ChangesDep,
    session: SessionDep,
    settings: SettingsDep,
    service: str,
    window: str = DEFAULT_WINDOW,
) -> HTMLResponse:
    """One service: breakdown, request vs usage, unit and token cost, right-sizing."""
    view = _view(runtime, slo, changes, service, window)
    identity: Identity | None = request.state.identity
    owner = service_owner(session, service)
    context = {
        "active": "cost",
        "view": view,
        "windows": list(WINDOWS),
        "charts": charts_json(view.charts),
        "may_propose": may_propose(identity, owner, settings.admin_group),
        "owner": owner,
        "policy": DEFAULT_POLICY,
        "usage_days": WINDOW_DAYS,
    }
    return page(request, "cost/service.html", context)


@api_router.get("/{service}", response_model=ServiceCostView, responses=error_responses(404, 422))
def service_cost_api(
    runtime: ServiceCostDep,
    slo: SloDep,
    changes: ChangesDep,
    service: str,
    window: str = DEFAULT_WINDOW,
) -> ServiceCostView:
    """Return one service's figures over ``window`` (7d, 14d, 30d, 90d): amounts in cents."""
    return _view(runtime, slo, changes, service, window)
