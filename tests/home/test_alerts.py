"""The home page's SLO panel: my teams' firing alerts, or why Prometheus cannot say."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.config import Settings
from portal.home.alerts import PanelState, team_alerts
from portal.integrations.prometheus import FakePrometheus
from portal.slo.runtime import SLORuntime
from portal.slo.store import SpecFile, resolve_files
from tests.conftest import REPO
from tests.home.support import person
from tests.slo.live_data import FakeSLOPrometheus, record, spec


@pytest.fixture
def catalog(settings: Settings, session: Session) -> Session:
    """The database with the repository's own catalog imported."""
    assert import_locations(session, [str(REPO / "catalog")], settings).problems == []
    return session


@pytest.fixture
def slo_dir(tmp_path: Path) -> Path:
    """Specs of two services: payments (platform-team's) and search (sre's)."""
    folder = tmp_path / "slos"
    folder.mkdir()
    (folder / "payments.yaml").write_text(
        spec("payments", ("availability", 99.9), ("latency", 99.0), owner="platform-team")
    )
    (folder / "search.yaml").write_text(spec("search", ("availability", 99.5), owner="sre"))
    return folder


def slo_runtime(
    settings: Settings, engine: Engine, slo_dir: Path, prometheus: FakePrometheus | None
) -> SLORuntime:
    local = settings.model_copy(update={"slo_paths": [str(slo_dir)]})
    return SLORuntime(local, engine, prometheus=prometheus)


def firing_ids(panel: object) -> list[str]:
    return [row.sloth_id for row in panel.firing]  # type: ignore[attr-defined]


def test_my_teams_firing_alerts_most_urgent_first(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    fake = FakeSLOPrometheus()
    runtime = slo_runtime(settings, engine, slo_dir, fake)
    slos = {entry.sloth_id: entry.slo for entry in runtime.slo_index().entries}
    assert set(slos) == {"payments-availability", "payments-latency", "search-availability"}
    record(fake, slos["payments-availability"], burn=3.0, alerts=[("ticket", "firing")])
    record(fake, slos["payments-latency"], burn=20.0, alerts=[("page", "firing")])
    record(fake, slos["search-availability"], burn=20.0, alerts=[("page", "firing")])

    grace = team_alerts(catalog, runtime, person(engine, "grace.hopper"), wait=True)
    assert grace.state is PanelState.READY and grace.owned == 2
    assert firing_ids(grace) == ["payments-latency", "payments-availability"]
    assert [row.alert.value for row in grace.firing] == ["page", "ticket"]

    margaret = team_alerts(catalog, runtime, person(engine, "margaret.hamilton"), wait=True)
    assert firing_ids(margaret) == ["search-availability"] and margaret.owned == 1

    alan = team_alerts(catalog, runtime, person(engine, "alan.turing"), wait=True)
    assert alan.state is PanelState.READY and alan.owned == 0 and not alan.firing


def test_pending_alerts_and_quiet_slos_are_not_firing(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    fake = FakeSLOPrometheus()
    runtime = slo_runtime(settings, engine, slo_dir, fake)
    slos = {entry.sloth_id: entry.slo for entry in runtime.slo_index().entries}
    record(fake, slos["payments-availability"], burn=15.0, alerts=[("page", "pending")])
    record(fake, slos["payments-latency"], burn=0.2)
    panel = team_alerts(catalog, runtime, person(engine, "grace.hopper"), wait=True)
    assert panel.state is PanelState.READY and panel.owned == 2 and panel.firing == []


def test_an_slo_only_prometheus_knows_belongs_to_its_components_owner(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    """Rules loaded from elsewhere: the catalog's Component named like the service decides."""
    fake = FakeSLOPrometheus()
    runtime = slo_runtime(settings, engine, slo_dir, fake)
    resolved, problems = resolve_files(
        [SpecFile("grafana.yaml", spec("grafana", ("availability", 99.0)), "local")]
    )
    assert problems == []
    record(fake, resolved[0][0], burn=20.0, alerts=[("page", "firing")])
    margaret = team_alerts(catalog, runtime, person(engine, "margaret.hamilton"), wait=True)
    assert firing_ids(margaret) == ["grafana-availability"]  # sre owns Component grafana
    grace = team_alerts(catalog, runtime, person(engine, "grace.hopper"), wait=True)
    assert firing_ids(grace) == []


def test_without_prometheus_the_panel_says_so(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    runtime = slo_runtime(settings, engine, slo_dir, None)
    panel = team_alerts(catalog, runtime, person(engine, "grace.hopper"), wait=True)
    assert panel.state is PanelState.NOT_CONFIGURED and panel.owned == 2


def test_an_unreachable_prometheus_is_reported_not_raised(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    fake = FakeSLOPrometheus(up=False)
    runtime = slo_runtime(settings, engine, slo_dir, fake)
    panel = team_alerts(catalog, runtime, person(engine, "grace.hopper"), wait=True)
    assert panel.state is PanelState.UNREACHABLE
    assert "not reachable" in panel.error and panel.prometheus_url == fake.url


def test_the_full_page_never_waits_for_prometheus(
    catalog: Session, engine: Engine, settings: Settings, slo_dir: Path
) -> None:
    """Nothing cached: the panel is left to htmx, and Prometheus is not asked."""
    fake = FakeSLOPrometheus()
    runtime = slo_runtime(settings, engine, slo_dir, fake)
    grace = person(engine, "grace.hopper")
    assert team_alerts(catalog, runtime, grace, wait=False).state is PanelState.LOADING
    for thread in threading.enumerate():  # a background refresh would have been started
        if thread.name == "slo-cache":
            thread.join(timeout=10)
    assert fake.calls == [] and runtime.snapshot_cache.peek() is None
    assert runtime.slo_index_cache.peek() is None
    assert team_alerts(catalog, runtime, grace, wait=True).state is PanelState.READY
    asked = len(fake.calls)
    cached = team_alerts(catalog, runtime, grace, wait=False)
    assert cached.state is PanelState.READY and cached.owned == 2
    assert len(fake.calls) == asked  # the fresh snapshot was used as it is
