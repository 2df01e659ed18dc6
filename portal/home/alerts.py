"""The home page's SLO panel: firing alerts of the SLOs the person's teams own.

The panel reads what the SLO pages read (:class:`~portal.slo.runtime.SLORuntime`'s cached
SLO index and Prometheus snapshot). The full page never waits for Prometheus: it shows
the last snapshot and refreshes a stale one in the background, and when there is none
yet it says so and htmx asks for the panel alone, which waits (see :mod:`.routes`). A
Prometheus that is not configured or does not answer is said in the panel; the page
never fails for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlmodel import Session

from portal.auth.identity import Identity, group_key
from portal.catalog.store import entities_by_ref
from portal.slo.burn import Snapshot
from portal.slo.overview import AlertState, SLOStatus, statuses
from portal.slo.runtime import SLORuntime
from portal.slo.store import SLOIndex

MAX_ALERTS = 10


class PanelState(StrEnum):
    """What the SLO panel can say."""

    LOADING = "loading"  # nothing cached yet: htmx loads the panel
    NOT_CONFIGURED = "not_configured"
    UNREACHABLE = "unreachable"
    READY = "ready"


@dataclass(frozen=True)
class AlertsPanel:
    """The firing alerts of the person's teams' SLOs, or why they cannot be shown."""

    state: PanelState
    firing: Sequence[SLOStatus] = ()
    owned: int = 0  # how many SLOs the teams own
    more: bool = False
    error: str = ""
    prometheus_url: str | None = None


def owns(row: SLOStatus, groups: frozenset[str], component_owners: dict[str, str]) -> bool:
    """Tell whether one of ``groups`` owns the SLO of ``row``.

    An SLO of a spec is owned by its ``team``/``owner`` label, else by its service's
    Component (the SLO index resolves that); one only Prometheus knows, by the Component
    named like its service.
    """
    if row.entry is not None:
        owner = row.entry.owner_ref
        return owner is not None and group_key(owner) in groups
    return component_owners.get(row.service) in groups


def _component_owners(session: Session, rows: Sequence[SLOStatus]) -> dict[str, str]:
    """Owners of the Components named like the services of SLOs without a spec (one query)."""
    keys = {
        f"component:default/{row.service}".lower(): row.service for row in rows if not row.entry
    }
    found = entities_by_ref(session, keys) if keys else {}
    return {keys[ref]: entity.owner_ref for ref, entity in found.items() if entity.owner_ref}


def build_alerts(
    session: Session, identity: Identity, slo_index: SLOIndex, snapshot: Snapshot, url: str | None
) -> AlertsPanel:
    """Join the SLO index and the snapshot; keep the teams' SLOs whose alert fires."""
    rows = statuses(slo_index, snapshot)
    owners = _component_owners(session, rows)
    mine = [row for row in rows if owns(row, identity.groups, owners)]
    if not snapshot.configured:
        return AlertsPanel(PanelState.NOT_CONFIGURED, owned=len(mine))
    if snapshot.error is not None:
        state = PanelState.UNREACHABLE
        return AlertsPanel(state, owned=len(mine), error=snapshot.error, prometheus_url=url)
    firing = [row for row in mine if row.alert is not AlertState.NONE]  # most urgent first
    return AlertsPanel(
        PanelState.READY,
        firing=firing[:MAX_ALERTS],
        owned=len(mine),
        more=len(firing) > MAX_ALERTS,
        prometheus_url=url,
    )


def team_alerts(
    session: Session, runtime: SLORuntime, identity: Identity, *, wait: bool
) -> AlertsPanel:
    """Return the SLO panel of ``identity``.

    With ``wait=False`` only cached values are used (stale ones are refreshed in the
    background); without any yet, the panel is :attr:`PanelState.LOADING`.
    """
    url = runtime.prometheus.url if runtime.prometheus else None
    if wait:
        slo_index, snapshot = runtime.slo_index(), runtime.snapshot()
    else:
        # Nothing is loaded in the background for a first visit: the panel's own request
        # (htmx) loads it, so no thread outlives a page that nobody finishes reading.
        if runtime.slo_index_cache.peek() is None or runtime.snapshot_cache.peek() is None:
            return AlertsPanel(PanelState.LOADING, prometheus_url=url)
        cached_index = runtime.slo_index_cache.get_nowait()
        cached_snapshot = runtime.snapshot_cache.get_nowait()
        if cached_index is None or cached_snapshot is None:  # cleared meanwhile
            return AlertsPanel(PanelState.LOADING, prometheus_url=url)
        slo_index, snapshot = cached_index, cached_snapshot
    return build_alerts(session, identity, slo_index, snapshot, url)
