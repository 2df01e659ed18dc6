"""Metrics-driven rollback and the Models page's promotion partials.

The offer logic is checked on its own (which promotion, which window, which SLO); then,
on a real app, an SLO of the service pages after a promotion merged: the SLO page loads
the banner, the banner's button proposes the rollback with the alert as evidence, and
the partials of the model page render the audit and the buttons.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from starlette.requests import Request

from portal.changes.models import ChangeStatus
from portal.integrations.mlflow import ModelVersion
from portal.models.audit import ModelChange, served_before
from portal.models.owners import ModelOwner, model_owners
from portal.models.pins import Pin
from portal.models.promotion_view import promotion_context
from portal.models.rollback_offer import offers_for
from portal.slo.burn import ActiveAlert, LiveSLO
from portal.slo.overview import SLOStatus, status_of
from portal.slo.runtime import SLORuntime
from tests.conftest import ALAN, GRACE, csrf_token, runtime
from tests.home.support import person
from tests.models.promote_support import (
    HTML,
    MODEL,
    App,
    main_pin,
    merged_promotion,
    promote_app,
    stored,
    versions,
)
from tests.proposals.seed import SERVICE
from tests.slo.live_data import FakeSLOPrometheus, record

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def row(
    change_id: str,
    action: str = "promote",
    environment: str = "prod",
    version: str = "4",
    merged_hours_ago: float | None = 1,
    status: ChangeStatus = ChangeStatus.MERGED,
    name: str = MODEL,
) -> ModelChange:
    merged = NOW - timedelta(hours=merged_hours_ago) if merged_hours_ago is not None else None
    return ModelChange(
        change_id=change_id,
        name=name,
        environment=environment,
        action=action,  # type: ignore[arg-type]
        version=version,
        from_version="2",
        status=status,
        proposed_by="user:default/grace.hopper",
        proposed_at=(merged or NOW) - timedelta(minutes=30),
        merged_at=merged,
        title=f"{action} {version}",
    )


def slo(severity: str | None = "page", state: str = "firing") -> SLOStatus:
    alerts = [ActiveAlert("AirQualityHighErrorRate", severity, state)] if severity else []
    live = LiveSLO(f"{SERVICE}-requests", SERVICE, "requests", objective=99.5, alerts=alerts)
    return status_of(None, live)


def test_a_paging_slo_offers_the_promotion_merged_within_the_window() -> None:
    (offer,) = offers_for([row("p4")], [slo()], NOW)
    assert (offer.model, offer.environment, offer.promotion.change_id) == (MODEL, "prod", "p4")
    assert offer.alerts == ["AirQualityHighErrorRate"]
    assert offer.open_rollback is None


@pytest.mark.parametrize(
    ("rows", "statuses"),
    [
        ([row("p4", merged_hours_ago=25)], [slo()]),  # merged before the window
        ([row("p4", merged_hours_ago=-1)], [slo()]),  # after now (clock skew): not before
        ([row("p4")], [slo("ticket")]),  # a ticket alert does not suggest a rollback
        ([row("p4")], [slo("page", "pending")]),  # nor a pending page
        ([row("p4")], [slo(None)]),
        ([row("p4", merged_hours_ago=None, status=ChangeStatus.READY)], [slo()]),  # not merged
        ([row("r2", action="rollback")], [slo()]),  # the newest change is a rollback already
        ([row("p4", merged_hours_ago=2), row("r2", "rollback", merged_hours_ago=1)], [slo()]),
    ],
)
def test_nothing_is_offered(rows: list[ModelChange], statuses: list[SLOStatus]) -> None:
    assert offers_for(rows, statuses, NOW) == []


def test_only_the_newest_change_of_each_environment_counts() -> None:
    rows = [
        row("p3", version="3", merged_hours_ago=3),
        row("p4", version="4", merged_hours_ago=2),
        row("d1", environment="dev", version="1", merged_hours_ago=5),
    ]
    offers = offers_for(rows, [slo()], NOW)
    assert [(o.environment, o.promotion.change_id) for o in offers] == [
        ("prod", "p4"),
        ("dev", "d1"),
    ]
    shorter = offers_for(rows, [slo()], NOW, timedelta(hours=4))
    assert [o.promotion.change_id for o in shorter] == ["p4"]


def test_a_rollback_already_proposed_is_linked_not_offered_again() -> None:
    open_rollback = row(
        "r1", "rollback", version="2", merged_hours_ago=None, status=ChangeStatus.READY
    )
    open_rollback = ModelChange(**{**open_rollback.__dict__, "proposed_at": NOW})
    stale = ModelChange(
        **{**row("r0", "rollback", merged_hours_ago=None, status=ChangeStatus.REJECTED).__dict__}
    )
    (offer,) = offers_for([row("p4"), stale, open_rollback], [slo()], NOW)
    assert offer.open_rollback is not None and offer.open_rollback.change_id == "r1"


def test_what_served_before_is_read_from_the_change_that_set_the_current_version() -> None:
    first = ModelChange(
        **{**row("p2", version="2", merged_hours_ago=5).__dict__, "from_version": ""}
    )
    rows = [
        row("r", "rollback", version="2", merged_hours_ago=1),  # 4 -> 2
        ModelChange(**{**row("p4", version="4", merged_hours_ago=3).__dict__, "from_version": "2"}),
        first,
        row("d", environment="dev", version="4", merged_hours_ago=0.5),
    ]
    rows[0] = ModelChange(**{**rows[0].__dict__, "from_version": "4"})
    setter = served_before(rows, "prod", "4")
    assert setter is not None and (setter.change_id, setter.from_version) == ("p4", "2")
    setter = served_before(rows, "prod", "2")
    assert setter is not None and (setter.change_id, setter.from_version) == ("r", "4")
    assert served_before(rows, "prod", "3") is None  # set by hand: nothing recorded
    assert served_before([first], "prod", "2") == first  # from unpinned: back to unpinned


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """An app where prod was promoted to 2, then to 4."""
    for client, settings, registry in promote_app(Path(tmp_path_factory.mktemp("banner"))):
        merged_promotion(client, GRACE, "2", "prod")
        merged_promotion(client, GRACE, "4", "prod")
        assert main_pin(settings, "prod") == "4"
        yield client, settings, registry


def paging(client: TestClient, alerts: Sequence[tuple[str, str]] = (("page", "firing"),)) -> str:
    """Make the service's SLO burn at 20x with ``alerts``; return its sloth id."""
    runtime_: SLORuntime = client.app.state.slo  # type: ignore[attr-defined]
    (entry,) = runtime_.slo_index().for_service(SERVICE)
    fake = FakeSLOPrometheus()
    record(fake, entry.slo, burn=20.0, alerts=alerts)
    runtime_.prometheus = fake
    runtime_.snapshot()  # the model page uses the last snapshot, never waits for one
    return entry.sloth_id


def test_the_slo_page_loads_the_banner_and_its_button_proposes_the_rollback(app: App) -> None:
    client, _, _ = app
    sloth_id = paging(client)
    detail = client.get(f"/slos/{sloth_id}", headers={**GRACE, **HTML})
    assert f'hx-get="/slos/{sloth_id}/rollback-offer"' in detail.text

    banner = client.get(f"/slos/{sloth_id}/rollback-offer", headers={**GRACE, "HX-Request": "true"})
    assert 'id="rollback-banner"' in banner.text
    assert "Propose the rollback of prod to version 2" in banner.text
    assert "AirQualityHighErrorRate" in banner.text and "20.0x" in banner.text
    outsider = client.get(
        f"/slos/{sloth_id}/rollback-offer", headers={**ALAN, "HX-Request": "true"}
    )
    assert 'id="rollback-banner"' in outsider.text
    assert "Propose the rollback" not in outsider.text

    posted = client.post(
        f"/models/{MODEL}/rollback",
        data={"csrf_token": csrf_token(client, "/catalog"), "environment": "prod", "slo": sloth_id},
        headers={**GRACE, **HTML},
        follow_redirects=False,
    )
    assert posted.status_code == 303, posted.text
    found = re.fullmatch(r"/reviews/([0-9a-f]+)", posted.headers["location"])
    assert found is not None
    change = stored(client, found.group(1))
    evidence = {item["label"]: item for item in change.evidence or []}
    assert evidence["SLO air-quality/requests-availability pages"]["text"] == (
        "AirQualityHighErrorRate firing (severity page)"
    )
    assert "20.0x" in evidence["burn rate"]["text"]
    assert evidence["promotion"]["text"].startswith("/reviews/")
    assert evidence["SLO page"]["url"] == f"http://testserver/slos/{sloth_id}"

    again = client.get(f"/slos/{sloth_id}/rollback-offer", headers={**GRACE, "HX-Request": "true"})
    assert "A rollback is already proposed" in again.text
    assert f'href="/reviews/{change.id}"' in again.text


def test_a_quiet_slo_shows_no_banner(app: App) -> None:
    client, _, _ = app
    sloth_id = paging(client, alerts=[("ticket", "firing")])
    detail = client.get(f"/slos/{sloth_id}", headers={**GRACE, **HTML})
    assert "rollback-offer" not in detail.text
    banner = client.get(f"/slos/{sloth_id}/rollback-offer", headers={**GRACE, "HX-Request": "true"})
    assert banner.status_code == 200 and "rollback-banner" not in banner.text


@dataclass(frozen=True)
class Detail:
    """The part of the model page's view model the partials read."""

    name: str
    owner: ModelOwner | None
    versions: Sequence[ModelVersion] = field(default_factory=versions)
    pins: Mapping[str, Pin] = field(default_factory=dict)
    environments: Sequence[str] = ("dev", "staging", "prod")


def render(client: TestClient, who: str, detail: Detail) -> str:
    """Render the two partials as the model page includes them."""
    engine = runtime(client).context.engine
    scope = {
        "type": "http",
        "app": client.app,
        "headers": [],
        "state": {"identity": person(engine, who)},
        "session": {"csrf": "token"},
    }
    request = Request(scope)
    with Session(engine) as session:
        context = promotion_context(request, session, detail)
    jinja = client.app.state.jinja  # type: ignore[attr-defined]
    return "".join(
        jinja.get_template(name).render(csrf_token="token", **context)
        for name in ("models/_rollback_banner.html", "models/_promotion.html")
    )


def test_the_model_page_partials_show_serving_rollback_and_audit(app: App) -> None:
    client, _, _ = app
    paging(client)
    with Session(runtime(client).context.engine) as session:
        owner = model_owners(session)[MODEL]
    pins = {
        "dev": Pin("dev", "services/air-quality/deploy/overlays/dev/model.yaml"),
        "prod": Pin("prod", "services/air-quality/deploy/overlays/prod/model.yaml", "4"),
    }
    html = render(client, "grace.hopper", Detail(MODEL, owner, pins=pins))
    assert 'id="promote-form"' in html and f'action="/models/{MODEL}/promote"' in html
    options = re.findall(r'<option value="(\d+)">', html)
    assert options[:4] == ["4", "3", "2", "1"] and "5" not in options  # READY only, newest first
    assert 'id="rollback-prod"' in html and "Roll back to version 2" in html
    assert "nothing pinned to roll back" in html  # dev
    audit = re.findall(r'<tr data-change="[0-9a-f]+" data-action="(\w+)">', html)
    assert audit == ["rollback", "promote", "promote"]  # newest first
    assert "A rollback is already proposed" in html  # the banner, from the earlier test

    outsider = render(client, "alan.turing", Detail(MODEL, owner, pins=pins))
    assert 'id="promote-form"' not in outsider and 'id="rollback-prod"' not in outsider
    assert "members of group:default/platform-team can propose changes" in outsider.lower()
