"""What the rules propose: which anomalies become which changes, and how often.

The rules (:mod:`.rules`, read from ``remediation.yaml``) map a signal (an anomaly of one
query at or above a severity) to an action on one environment of a service in the GitOps
repository. Every action is a change
proposed to the portal (``POST /api/changes``) for a person to review; nothing is applied
to a cluster. Each edit goes to the environment's overlay,
``services/<service>/deploy/overlays/<env>/kustomization.yaml``, laid out as the portal's
templates write it:

- ``scale_out`` replaces the overlay's HorizontalPodAutoscaler patch (its first ``patches``
  entry) with a minimum raised by ``step`` (never above ``max``; the maximum rises with it
  when needed). JSON 6902 ``test`` operations first check that the entry still holds the
  bounds the cluster reports, so a stale or hand-laid overlay is refused by the portal
  instead of being overwritten.
- ``rollback`` sets the first ``images`` entry's ``newTag`` to the tag before the deployed
  one in the rule's ``tag_history`` (oldest first), after ``test`` operations check the
  image name and that ``main`` still deploys that tag. The detector cannot read git, so the
  release order is the rule's and the deployed tag is the cluster's (kube-state-metrics).
- ``restart`` sets a ``commonAnnotations`` timestamp in the overlay (a strategic-merge patch
  of the Kustomization): kustomize copies it into the Deployment's pod template, which
  rolls the pods, and a later restart rewrites the same line instead of adding a patch.

Pure: no network and no clock of its own (``now`` comes from an injected clock), so the
cooldown and hourly limits are tested with a clock that is simply set.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from .rules import SEVERITIES, RemediationConfig, Restart, Rollback, Rule, ScaleOut

RESTART_ANNOTATION = "aiops-detector/restarted-at"
MAX_URL = 2000  # the portal's limit for an evidence link
MAX_TEXT = 10_000  # the portal's limit for an evidence text
CHART_CONTEXT = timedelta(hours=1)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
Clock = Callable[[], datetime]


class DetectedWindow(Protocol):
    """A window as the detector merges it (epoch seconds, score relative to the alarm line)."""

    @property
    def start(self) -> float: ...  # noqa: D102
    @property
    def end(self) -> float: ...  # noqa: D102
    @property
    def peak_score(self) -> float: ...  # noqa: D102
    @property
    def severity(self) -> str: ...  # noqa: D102
    @property
    def detector(self) -> str: ...  # noqa: D102


@dataclass(frozen=True)
class AnomalyWindow:
    """A detected anomaly: the query, its window, the peak score and who fired."""

    query: str
    start: datetime
    end: datetime
    peak_score: float
    severity: str
    detector: str
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")
        if self.start.tzinfo is None or self.end.tzinfo is None or self.start > self.end:
            raise ValueError("a window has time-zone aware start and end, start <= end")

    @classmethod
    def of(cls, query: str, window: DetectedWindow, threshold: float | None = 1.0) -> AnomalyWindow:
        """Return the window the detector found for ``query`` (scores relative to 1.0)."""
        return cls(
            query,
            datetime.fromtimestamp(window.start, UTC),
            datetime.fromtimestamp(window.end, UTC),
            window.peak_score,
            window.severity,
            window.detector,
            threshold,
        )


@dataclass(frozen=True)
class ServiceState:
    """What runs in one environment; a fact not known is None and ``problem`` says why."""

    min_replicas: int | None = None
    max_replicas: int | None = None
    image_tag: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class Plan:
    """What an action proposes: the edits, the change's title, and what it does in words."""

    edits: list[dict[str, Any]]
    title: str
    said: str


@dataclass(frozen=True)
class Decision:
    """A rule that fired: the change to propose (``payload``), or why none is (``payload`` None)."""

    rule: Rule
    window: AnomalyWindow
    payload: dict[str, Any] | None
    summary: str


def _normal(query: str) -> str:
    return " ".join(query.split())


def overlay_path(service: str, environment: str) -> str:
    """Return the path of the environment's overlay in the GitOps repository."""
    return f"services/{service}/deploy/overlays/{environment}/kustomization.yaml"


def replica_bounds_patch(minimum: int, maximum: int) -> str:
    """Return the overlay's HPA patch text, exactly as the portal's templates lay it out."""
    return (
        f"- op: replace\n  path: /spec/minReplicas\n  value: {minimum}\n"
        f"- op: replace\n  path: /spec/maxReplicas\n  value: {maximum}"
    )


def _where(action: ScaleOut | Rollback | Restart) -> str:
    return f"{action.service} in {action.environment}"


def _edit(service: str, environment: str, kind: str, patch: Any) -> dict[str, Any]:
    target = {"kind": "Kustomization"}
    body = {"type": kind, "target": target, "patch": patch}
    return {"path": overlay_path(service, environment), "patch": body}


def _scale_out(action: ScaleOut, state: ServiceState) -> Plan | str:
    low, high = state.min_replicas, state.max_replicas
    if low is None or high is None:
        return f"the deployed HPA bounds are unknown: {state.problem or 'no state read'}"
    if low >= action.max:
        return f"the HPA minimum is {low}, already at the rule's max {action.max}"
    new_low = min(low + action.step, action.max)
    new_high = max(high, new_low)
    ops = [
        {"op": "test", "path": "/patches/0/target/kind", "value": "HorizontalPodAutoscaler"},
        {"op": "test", "path": "/patches/0/patch", "value": replica_bounds_patch(low, high)},
        {
            "op": "replace",
            "path": "/patches/0/patch",
            "value": replica_bounds_patch(new_low, new_high),
        },
    ]
    said = f"raise the HPA minimum from {low} to {new_low}"
    if new_high != high:
        said += f" (and the maximum from {high} to {new_high}, never below the minimum)"
    edits = [_edit(action.service, action.environment, "json6902", ops)]
    return Plan(edits, f"Scale out {_where(action)}: HPA minimum {low} to {new_low}", said)


def previous_tag(history: list[str], deployed: str | None) -> str:
    """Return the tag released before ``deployed``; raise ValueError saying why there is none."""
    if deployed is None:
        raise ValueError("the deployed image tag is unknown")
    if deployed not in history:
        raise ValueError(f"the deployed tag {deployed} is not in the rule's tag_history")
    index = history.index(deployed)
    if index == 0:
        raise ValueError(f"the deployed tag {deployed} is the oldest in the rule's tag_history")
    return history[index - 1]


def _rollback(action: Rollback, state: ServiceState) -> Plan | str:
    try:
        target = previous_tag(action.tag_history, state.image_tag)
    except ValueError as exc:
        return f"{exc}{f': {state.problem}' if state.problem else ''}"
    ops = [
        {"op": "test", "path": "/images/0/name", "value": action.image},
        {"op": "test", "path": "/images/0/newTag", "value": state.image_tag},
        {"op": "replace", "path": "/images/0/newTag", "value": target},
    ]
    said = (
        f"roll {action.image} back from {state.image_tag} to {target}. Image automation moves "
        f"newTag forward again (the $imagepolicy marker): exclude {state.image_tag} from the "
        f"ImagePolicy or suspend the automation for {action.environment} before merging"
    )
    edits = [_edit(action.service, action.environment, "json6902", ops)]
    return Plan(edits, f"Roll back {_where(action)}: {state.image_tag} to {target}", said)


def _restart(action: Restart, now: datetime) -> Plan:
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"commonAnnotations": {RESTART_ANNOTATION: stamp}}
    said = f"restart the pods (pod template annotation {RESTART_ANNOTATION}: {stamp})"
    edits = [_edit(action.service, action.environment, "strategic-merge", patch)]
    return Plan(edits, f"Restart {_where(action)}", said)


def _text(value: str) -> str:
    """Return ``value`` as the portal stores evidence text: no control characters, bounded."""
    return _CONTROL.sub(" ", value)[:MAX_TEXT]


def chart_url(detector_url: str, window: AnomalyWindow) -> str:
    """Return the link to the detector's page charting the query around the window.

    The range is the window with as much again on each side (at least an hour), so the
    reviewer sees what normal looked like before and after.
    """
    pad = max(CHART_CONTEXT, window.end - window.start)
    start, end = window.start - pad, window.end + pad
    query = urlencode({"query": window.query, "start": start.isoformat(), "end": end.isoformat()})
    url = f"{detector_url}/?{query}"
    return url if len(url) <= MAX_URL else f"{detector_url}/"


def change_payload(
    rule: Rule, window: AnomalyWindow, plan: Plan, url: str | None
) -> dict[str, Any]:
    """Return the body of ``POST /api/changes`` for one rule that fired on ``window``."""
    minutes = (window.end - window.start) / timedelta(minutes=1)
    threshold = f", threshold {window.threshold:.3f}" if window.threshold is not None else ""
    scores = (
        f"peak score {window.peak_score:.3f}{threshold}, severity {window.severity}, "
        f"detector {window.detector}"
    )
    span = f"{window.start.isoformat()} to {window.end.isoformat()} ({minutes:.0f} min)"
    reason = (
        f"The AIOps detector found an anomaly in `{_normal(window.query)}` from {span}: "
        f"{scores}. Rule {rule.name} (severity {rule.signal.min_severity} or above) proposes "
        f"to {plan.said}.\nNothing is applied until a reviewer approves. The rule proposes at most "
        f"{rule.max_per_hour} changes an hour, {rule.cooldown} s apart."
    )
    evidence: list[dict[str, str]] = [
        {"label": "query", "text": _text(window.query)},
        {"label": "anomaly window", "text": span},
        {"label": "scores", "text": scores},
    ]
    if url is not None:
        evidence.append({"label": "chart", "url": url})
    return {
        "service": rule.action.service,
        "title": f"{plan.title} (AIOps rule {rule.name})",
        "reason": reason[:100_000],
        "edits": plan.edits,
        "evidence": evidence,
    }


class Remediator:
    """Decides the proposals for each anomaly, honouring every rule's cooldown and limit."""

    def __init__(self, config: RemediationConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._last: dict[str, datetime] = {}
        self._proposed: dict[str, deque[datetime]] = {}

    def matching(self, window: AnomalyWindow) -> list[Rule]:
        """Return the rules whose signal matches ``window`` and that may fire now."""
        now, query = self.clock(), _normal(window.query)
        rank = SEVERITIES.index(window.severity)
        found = []
        for rule in self.config.rules:
            if _normal(rule.signal.query) != query:
                continue
            if rank < SEVERITIES.index(rule.signal.min_severity):
                continue
            last = self._last.get(rule.name)
            if last is not None and now - last < timedelta(seconds=rule.cooldown):
                continue  # cooling down: said nowhere, or every loop would repeat it
            recent = self._proposed.setdefault(rule.name, deque())
            while recent and now - recent[0] >= timedelta(hours=1):
                recent.popleft()
            if len(recent) >= rule.max_per_hour:
                continue
            found.append(rule)
        return found

    def decide(self, window: AnomalyWindow, states: Mapping[str, ServiceState]) -> list[Decision]:
        """Return a decision for every rule that fires on ``window`` now, and count it.

        ``states`` holds, by rule name, the deployed state each scale-out or rollback needs
        (a restart needs none). Every decision starts the rule's cooldown;
        only proposals count towards its hourly maximum.
        """
        now = self.clock()
        decisions = []
        for rule in self.matching(window):
            action = rule.action
            state = states.get(rule.name, ServiceState())
            if isinstance(action, ScaleOut):
                planned = _scale_out(action, state)
            elif isinstance(action, Rollback):
                planned = _rollback(action, state)
            else:
                planned = _restart(action, now)
            self._last[rule.name] = now
            if isinstance(planned, str):
                decisions.append(Decision(rule, window, None, f"not proposed: {planned}"))
                continue
            self._proposed.setdefault(rule.name, deque()).append(now)
            url = chart_url(self.config.detector_url, window) if self.config.detector_url else None
            payload = change_payload(rule, window, planned, url)
            decisions.append(Decision(rule, window, payload, payload["title"]))
        return decisions
