"""Metrics-driven rollback: an SLO pages soon after a model promotion merged, so offer to undo it.

When an SLO of a service has a firing page alert (the SLO runtime's snapshot,
:class:`~portal.slo.overview.AlertState`) and a promotion of one of that service's models
merged within a window before now (24 hours by default), the Models and SLO pages show a
banner offering the rollback change, with the evidence: the alert, the burn rates, and
the promotion's time and change. Only the newest merged change of each model and
environment counts: a promotion already rolled back (or followed by another) is not
offered again, and a rollback already proposed is linked instead of offered twice.

Nothing here decides anything: the offer is a button proposing the rollback
(:mod:`portal.proposals.promote_model`), which a reviewer still approves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from portal.changes.models import OPEN_STATUSES
from portal.models.audit import ModelChange, model_changes, newest_merged
from portal.slo.burn import Severity
from portal.slo.overview import AlertState, SLOStatus

DEFAULT_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class RollbackOffer:
    """One promotion worth rolling back, and the SLO alert that says so."""

    slo: SLOStatus
    promotion: ModelChange
    open_rollback: ModelChange | None = None  # a rollback of it already proposed, still open

    @property
    def alerts(self) -> list[str]:
        """The names of the SLO's firing page alerts."""
        live = self.slo.live
        return sorted(
            {
                alert.name
                for alert in (live.alerts if live else [])
                if alert.severity == Severity.PAGE and alert.state == "firing"
            }
        )

    @property
    def burn_text(self) -> str:
        """The SLO's burn rate over each window shown: ``5m 16.2x, 1h 14.9x``."""
        said = [
            f"{cell.window} {cell.burn:.1f}x" for cell in self.slo.burns if cell.burn is not None
        ]
        return ", ".join(said) or "no burn rate recorded"

    @property
    def environment(self) -> str:
        """The environment the promotion changed."""
        return self.promotion.environment

    @property
    def model(self) -> str:
        """The registered model promoted."""
        return self.promotion.name


def _recent(row: ModelChange, now: datetime, window: timedelta) -> bool:
    return row.merged_at is not None and now - window <= row.merged_at <= now


def offers_for(
    rows: Sequence[ModelChange],
    statuses: Iterable[SLOStatus],
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> list[RollbackOffer]:
    """Match the paging SLOs of a service with its recent promotions (``rows``: its audit).

    Per model and environment only the newest merged change counts, and only a
    promotion; each paging SLO offers each such promotion once.
    """
    paging = [status for status in statuses if status.alert is AlertState.PAGE]
    if not paging:
        return []
    newest: dict[tuple[str, str], ModelChange] = {}
    for row in newest_merged(rows):
        newest.setdefault((row.name, row.environment), row)
    promotions = [
        row for row in newest.values() if row.action == "promote" and _recent(row, now, window)
    ]
    offers = []
    for promotion in sorted(promotions, key=lambda row: row.merged_at or now, reverse=True):
        proposed = [
            row
            for row in rows
            if row.action == "rollback"
            and row.status in OPEN_STATUSES
            and (row.name, row.environment) == (promotion.name, promotion.environment)
            and row.proposed_at >= (promotion.merged_at or promotion.proposed_at)
        ]
        for status in paging:
            offers.append(RollbackOffer(status, promotion, proposed[0] if proposed else None))
    return offers


def rollback_offers(
    session: Session,
    service: str,
    statuses: Iterable[SLOStatus],
    now: datetime,
    name: str | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> list[RollbackOffer]:
    """Return the rollbacks to offer for ``service`` (one model's, given ``name``).

    The audit is read only when one of ``statuses`` pages.
    """
    mine = [status for status in statuses if status.service == service]
    if not any(status.alert is AlertState.PAGE for status in mine):
        return []
    return offers_for(model_changes(session, service, name), mine, now, window)
