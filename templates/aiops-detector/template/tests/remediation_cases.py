"""What the remediation tests share: a rules file, a clock set by hand, deployed states, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app.remediation import (
    AnomalyWindow,
    Remediator,
    ServiceState,
)
from app.rules import load_config

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
QUERY = 'sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))'
RULES = f"""\
dry_run: false
detector_url: https://detector.example.com
rules:
  - name: scale
    signal: {{query: '{QUERY}', min_severity: critical}}
    action: {{type: scale_out, service: checkout, environment: prod, step: 1, max: 5}}
    cooldown: 600
    max_per_hour: 2
  - name: back
    signal: {{query: errors, min_severity: warning}}
    action:
      type: rollback
      service: checkout
      environment: staging
      image: registry.example.com/services/checkout
      tag_history: ["1.3.0", "1.4.0", "1.5.0"]
  - name: bounce
    signal: {{query: memory, min_severity: warning}}
    action: {{type: restart, service: checkout, environment: dev}}
    cooldown: 0
    max_per_hour: 2
"""


class FakeClock:
    """A clock that says what it is set to."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        """Return the time set."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += timedelta(seconds=seconds)


class FakeState:
    """Deployed state by environment, or an error to raise."""

    def __init__(self, state: ServiceState | None = None, error: Exception | None = None) -> None:
        self.state = state or ServiceState(min_replicas=2, max_replicas=4, image_tag="1.5.0")
        self.error = error

    async def read(self, action: Any) -> ServiceState:
        """Return the state, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.state


def window(query: str = QUERY, severity: str = "critical", minutes: int = 5) -> AnomalyWindow:
    """Return a window ending at T0 with a peak score of 3.2."""
    return AnomalyWindow(query, T0 - timedelta(minutes=minutes), T0, 3.2, severity, "both", 1.0)


def remediator(text: str = RULES, clock: FakeClock | None = None) -> Remediator:
    """Return a remediator of ``text``."""
    return Remediator(load_config(text), clock or FakeClock())


def fired(rem: Remediator, win: AnomalyWindow, state: ServiceState | None = None) -> list[str]:
    """Return the rules that propose a change for ``win`` now."""
    states = {rule.name: state or FakeState().state for rule in rem.config.rules}
    return [d.rule.name for d in rem.decide(win, states) if d.payload is not None]
