"""Remediation at work: the deployed state, proposals sent to the portal, and their list.

For each detected anomaly window, :class:`Remediations` asks the :class:`.remediation.Remediator`
which rules fire, reads what the scale-outs and rollbacks need from Prometheus
(kube-state-metrics: the HPA bounds and the image tags running), and either sends each
change to the portal (``POST {portal}/api/changes`` with ``Authorization: Bearer <token>``,
a service-account token scoped to the services the rules name) or, in dry-run mode, only
records it. Either way the outcome goes to a bounded in-memory list served at
``GET /api/remediations`` (:data:`router`). Nothing here raises into the detector's loop:
a portal that refuses or is down, or a Prometheus that does not answer, is recorded as
such, with the reason.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from .remediation import AnomalyWindow, Decision, Remediator, ServiceState
from .rules import Rollback, ScaleOut

logger = logging.getLogger(__name__)
MAX_RECORDS = 200
TIMEOUT_SECONDS = 10.0
MAX_REFUSAL = 2000
Status = Literal["dry-run", "proposed", "failed", "skipped"]


class RemediationRecord(BaseModel):
    """One rule that fired: what it proposed (or would have), and what became of it."""

    at: datetime
    rule: str
    action: str
    service: str
    environment: str
    query: str
    window_start: datetime
    window_end: datetime
    status: Status
    detail: str
    title: str | None = None
    change_url: str | None = None
    payload: dict[str, Any] | None = None


class RemediationList(BaseModel):
    """``GET /api/remediations``: the mode (and why), the rules' count, the latest records."""

    dry_run: bool
    dry_run_reason: str | None
    rules: int
    remediations: list[RemediationRecord]


class RemediationLog:
    """The latest :data:`MAX_RECORDS` records, in memory (a restart starts it afresh)."""

    def __init__(self, limit: int = MAX_RECORDS) -> None:
        self._records: deque[RemediationRecord] = deque(maxlen=limit)

    def add(self, record: RemediationRecord) -> None:
        """Keep ``record``; the oldest goes when the list is full."""
        self._records.append(record)

    def newest_first(self) -> list[RemediationRecord]:
        """Return the records kept, newest first."""
        return list(reversed(self._records))


class Outcome(BaseModel):
    """What the portal answered: a change created (``ok``) or why not."""

    ok: bool
    detail: str
    change_url: str | None = None


def _refusal(response: httpx.Response) -> str:
    """Return the portal's own words for a refusal: its detail and each field's message."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:MAX_REFUSAL] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:MAX_REFUSAL]
    said = str(body.get("detail") or response.reason_phrase)
    errors = body.get("errors")
    if isinstance(errors, dict) and errors:
        said += ": " + "; ".join(f"{field}: {message}" for field, message in errors.items())
    return said[:MAX_REFUSAL]


class PortalClient:
    """Proposes changes to the portal with the detector's service-account token."""

    def __init__(
        self,
        portal_url: str,
        token: str,
        client: httpx.AsyncClient,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = f"{portal_url.rstrip('/')}/api/changes"
        self.base = portal_url.rstrip("/")
        self._token = token
        self._client = client
        self._timeout = timeout

    async def propose(self, payload: dict[str, Any]) -> Outcome:
        """Send ``payload``; return the outcome, never raising for the portal's faults."""
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            response = await self._client.post(
                self.url, json=payload, headers=headers, timeout=self._timeout
            )
        except httpx.TimeoutException:
            return Outcome(ok=False, detail=f"the portal did not answer within {self._timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(
                ok=False, detail=f"the portal is unreachable: {type(exc).__name__}: {exc}"
            )
        if response.status_code != 202:
            said = f"the portal refused ({response.status_code}): {_refusal(response)}"
            return Outcome(ok=False, detail=said)
        try:
            body = response.json()
            change, status, url = body["id"], body["status"], body["url"]
        except (ValueError, KeyError, TypeError):
            return Outcome(ok=False, detail="the portal answered 202 without a change id and url")
        return Outcome(
            ok=True, detail=f"change {change} ({status})", change_url=f"{self.base}{url}"
        )


class StateReader(Protocol):
    """Reads what runs in the environment an action names."""

    async def read(self, action: ScaleOut | Rollback) -> ServiceState:
        """Return the deployed state (a fact not known is None, and ``problem`` says why)."""
        ...


class PrometheusState:
    """Reads the deployed state from kube-state-metrics through Prometheus' query API.

    The service's namespace and HPA carry its name (as the portal's templates deploy it);
    ``environment_label`` (``cluster`` by default, empty for a Prometheus that sees one
    environment) selects the environment.
    """

    def __init__(
        self,
        prometheus_url: str,
        client: httpx.AsyncClient,
        environment_label: str = "cluster",
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.url = f"{prometheus_url.rstrip('/')}/api/v1/query"
        self.environment_label = environment_label
        self._client = client
        self._timeout = timeout

    def _selector(self, action: ScaleOut | Rollback, *extra: str) -> str:
        matchers = [f'namespace="{action.service}"', *extra]
        if self.environment_label:
            matchers.append(f'{self.environment_label}="{action.environment}"')
        return "{" + ",".join(matchers) + "}"

    async def _query(self, promql: str) -> list[dict[str, Any]]:
        """Return the instant vector of ``promql``; raise ValueError saying what went wrong."""
        try:
            response = await self._client.get(
                self.url, params={"query": promql}, timeout=self._timeout
            )
            body = response.json()
        except httpx.HTTPError as exc:
            raise ValueError(f"Prometheus is unreachable: {type(exc).__name__}: {exc}") from None
        except ValueError:
            raise ValueError(f"Prometheus answered {response.status_code} without JSON") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            said = body.get("error") if isinstance(body, dict) else None
            raise ValueError(f"Prometheus refused {promql}: {said or response.status_code}")
        result = body.get("data", {}).get("result")
        if not isinstance(result, list):
            raise ValueError(f"Prometheus answered {promql} without an instant vector")
        return result

    async def _count(self, metric: str, action: ScaleOut) -> int:
        name = f'horizontalpodautoscaler="{action.service}"'
        promql = f"{metric}{self._selector(action, name)}"
        series = await self._query(promql)
        if len(series) != 1:
            raise ValueError(f"{promql} has {len(series)} series, not one")
        value = float(series[0]["value"][1])
        if not value.is_integer() or value < 1:
            raise ValueError(f"{promql} is {value}, not a replica count")
        return int(value)

    async def read(self, action: ScaleOut | Rollback) -> ServiceState:
        """Return the HPA bounds a scale-out starts from, or the image tag a rollback does."""
        try:
            if isinstance(action, ScaleOut):
                low = await self._count("kube_horizontalpodautoscaler_spec_min_replicas", action)
                high = await self._count("kube_horizontalpodautoscaler_spec_max_replicas", action)
                return ServiceState(min_replicas=low, max_replicas=high)
            # In a PromQL string "\\." is the regex "\.": a literal dot of the registry name.
            image = action.image.replace(".", "\\\\.")
            selector = self._selector(action, f'image=~"{image}:.+"')
            series = await self._query(f"count by (image) (kube_pod_container_info{selector})")
            tags = sorted({str(s["metric"].get("image", "")).rpartition(":")[2] for s in series})
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            return ServiceState(problem=str(exc))
        if len(tags) != 1:
            said = ", ".join(tags) if tags else "none"
            return ServiceState(problem=f"{len(tags)} tags of {action.image} run ({said}), not one")
        return ServiceState(image_tag=tags[0])


class Remediations:
    """Turns anomaly windows into proposals (or dry-run records); never raises to its caller."""

    def __init__(
        self,
        remediator: Remediator,
        state: StateReader,
        portal: PortalClient | None = None,
        log: RemediationLog | None = None,
    ) -> None:
        self.remediator = remediator
        self.state = state
        self.portal = portal
        self.log = log or RemediationLog()

    @property
    def dry_run(self) -> bool:
        """Say whether proposals are only recorded: by the rules' file, or for want of a portal."""
        return self.dry_run_reason is not None

    @property
    def dry_run_reason(self) -> str | None:
        """Say why proposals are only recorded (None: they are sent to the portal)."""
        if self.remediator.config.dry_run:
            return "dry_run is true in the rules file"
        if self.portal is None:
            return "PORTAL_TOKEN is not set (the Secret <name>-portal-token)"
        return None

    async def handle(self, window: AnomalyWindow) -> list[RemediationRecord]:
        """Act on ``window``: the records it made (every error is logged and recorded)."""
        records: list[RemediationRecord] = []
        try:
            states: dict[str, ServiceState] = {}
            for rule in self.remediator.matching(window):
                if isinstance(rule.action, ScaleOut | Rollback):  # a restart needs no state
                    states[rule.name] = await self.state.read(rule.action)
            for decision in self.remediator.decide(window, states):
                records.append(await self._act(decision))
        except Exception:  # the detector's loop goes on whatever remediation meets
            logger.exception("remediation of %s failed", window.query)
        return records

    async def _act(self, decision: Decision) -> RemediationRecord:
        action, window = decision.rule.action, decision.window
        fields: dict[str, Any] = {
            "at": self.remediator.clock(),
            "rule": decision.rule.name,
            "action": action.type,
            "service": action.service,
            "environment": action.environment,
            "query": window.query,
            "window_start": window.start,
            "window_end": window.end,
            "payload": decision.payload,
        }
        if decision.payload is None:
            record = RemediationRecord(**fields, status="skipped", detail=decision.summary)
        elif self.dry_run:
            said = "dry run: recorded, not sent to the portal"
            record = RemediationRecord(
                **fields, status="dry-run", detail=said, title=decision.summary
            )
        else:
            assert self.portal is not None  # not a dry run
            outcome = await self.portal.propose(decision.payload)
            status: Status = "proposed" if outcome.ok else "failed"
            record = RemediationRecord(
                **fields,
                status=status,
                detail=outcome.detail,
                title=decision.summary,
                change_url=outcome.change_url,
            )
        level = logging.WARNING if record.status == "failed" else logging.INFO
        logger.log(level, "remediation %s %s: %s", record.rule, record.status, record.detail)
        self.log.add(record)
        return record


router = APIRouter(tags=["remediation"])


@router.get("/api/remediations", response_model=RemediationList)
def list_remediations(request: Request) -> RemediationList:
    """List the latest remediations, newest first: proposed, failed, skipped or dry-run."""
    remediations = getattr(request.app.state, "remediations", None)
    if not isinstance(remediations, Remediations):
        raise HTTPException(503, "remediation is not configured (no remediation.yaml loaded)")
    return RemediationList(
        dry_run=remediations.dry_run,
        dry_run_reason=remediations.dry_run_reason,
        rules=len(remediations.remediator.config.rules),
        remediations=remediations.log.newest_first(),
    )
