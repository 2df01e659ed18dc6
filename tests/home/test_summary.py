"""The home page's database panels, against a real database with the repository's catalog."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from portal.auth.identity import Identity
from portal.catalog.importer import import_locations
from portal.catalog.models import Entity
from portal.changes.models import Change, ChangeStatus
from portal.changes.store import list_changes
from portal.config import Settings
from portal.home import summary
from portal.home.summary import (
    Limits,
    build_summary,
    open_changes_by,
    recent_merges,
    reviews_waiting,
    team_services,
)
from portal.review.decide import may_review
from tests.conftest import REPO
from tests.home.support import ML, PLATFORM, SRE, add_change, person
from tests.query_count import count_queries

ADMINS = "platform-admins"


@pytest.fixture
def catalog(settings: Settings, session: Session) -> Session:
    """The database with the repository's own catalog imported."""
    report = import_locations(session, [str(REPO / "catalog")], settings)
    assert report.problems == []
    return session


def names(rows: object) -> list[str]:
    return [row.name if isinstance(row, Entity) else row.service for row in rows]  # type: ignore[attr-defined]


def test_my_teams_services_are_the_components_my_groups_own(
    catalog: Session, engine: Engine
) -> None:
    grace, margaret, alan = (
        person(engine, n) for n in ("grace.hopper", "margaret.hamilton", "alan.turing")
    )
    assert names(team_services(catalog, grace.groups, 20).items) == ["flux", "portal"]
    # Not the API, Resource and System platform-team owns too: Components only.
    assert names(team_services(catalog, margaret.groups, 20).items) == [
        "grafana",
        "otel-collector",
        "prometheus",
        "tempo",
    ]
    assert not team_services(catalog, alan.groups, 20)  # ml-apps owns nothing
    assert not team_services(catalog, frozenset(), 20)


def test_orphaned_components_are_not_listed_and_the_list_is_bounded(
    catalog: Session, engine: Engine
) -> None:
    grace = person(engine, "grace.hopper")
    flux = catalog.exec(select(Entity).where(Entity.ref == "component:default/flux")).one()
    flux.orphan = True
    catalog.add(flux)
    catalog.commit()
    assert names(team_services(catalog, grace.groups, 20).items) == ["portal"]
    margaret = person(engine, "margaret.hamilton")
    first = team_services(catalog, margaret.groups, 2)
    assert names(first.items) == ["grafana", "otel-collector"] and first.more
    assert not team_services(catalog, margaret.groups, 4).more


def test_my_open_changes_are_the_open_changes_i_requested(catalog: Session, engine: Engine) -> None:
    add_change(catalog, "old-one", by="ada.lovelace", status=ChangeStatus.CHECKING, minutes_ago=30)
    add_change(catalog, "new-one", by="ada.lovelace", minutes_ago=1)
    add_change(
        catalog,
        "sent-back",
        by="ada.lovelace",
        status=ChangeStatus.CHANGES_REQUESTED,
        minutes_ago=10,
    )
    add_change(catalog, "merged", by="ada.lovelace", status=ChangeStatus.MERGED)
    add_change(catalog, "rejected", by="ada.lovelace", status=ChangeStatus.REJECTED)
    add_change(catalog, "failed", by="ada.lovelace", status=ChangeStatus.FAILED)
    add_change(catalog, "graces", by="grace.hopper")
    ada = person(engine, "ada.lovelace")
    mine = open_changes_by(catalog, ada.user_ref, 10)
    assert names(mine.items) == ["new-one", "sent-back", "old-one"] and not mine.more
    assert names(open_changes_by(catalog, ada.user_ref, 2).items) == ["new-one", "sent-back"]
    assert open_changes_by(catalog, ada.user_ref, 2).more


def test_reviews_waiting_for_me_are_my_teams_ready_changes_not_my_own(
    catalog: Session, engine: Engine
) -> None:
    add_change(catalog, "adas", by="ada.lovelace", minutes_ago=20)
    add_change(catalog, "graces", by="grace.hopper", minutes_ago=10)
    add_change(catalog, "still-checking", by="ada.lovelace", status=ChangeStatus.CHECKING)
    add_change(catalog, "sent-back", by="ada.lovelace", status=ChangeStatus.CHANGES_REQUESTED)
    add_change(catalog, "merged", by="ada.lovelace", status=ChangeStatus.MERGED)
    add_change(catalog, "ml-model", by="katherine.johnson", owner=ML, minutes_ago=5)
    grace, ada, alan = (person(engine, n) for n in ("grace.hopper", "ada.lovelace", "alan.turing"))
    # A teammate: the other's ready change of the team, never their own.
    assert names(reviews_waiting(catalog, grace, ADMINS, 10).items) == ["adas"]
    # A platform admin reviews any team's change, oldest first, but not their own.
    assert names(reviews_waiting(catalog, ada, ADMINS, 10).items) == ["graces", "ml-model"]
    assert names(reviews_waiting(catalog, alan, ADMINS, 10).items) == ["ml-model"]
    margaret = person(engine, "margaret.hamilton")
    assert not reviews_waiting(catalog, margaret, ADMINS, 10)  # sre: none of theirs


def test_waiting_for_me_agrees_with_who_may_decide(catalog: Session, engine: Engine) -> None:
    """Every ready change is listed for exactly the people the decision would accept."""
    for index, (by, owner) in enumerate(
        itertools.product(
            ("ada.lovelace", "grace.hopper", "alan.turing", "margaret.hamilton"),
            (PLATFORM, ML, SRE),
        )
    ):
        add_change(catalog, f"svc-{index}", by=by, owner=owner, minutes_ago=index)
    people = (
        "ada.lovelace",
        "grace.hopper",
        "alan.turing",
        "katherine.johnson",
        "margaret.hamilton",
    )
    every = list_changes(catalog, open_only=True, limit=100)
    for name in people:
        identity = person(engine, name)
        listed = {change.id for change in reviews_waiting(catalog, identity, ADMINS, 100).items}
        allowed = {change.id for change in every if may_review(change, identity, ADMINS) is None}
        assert listed == allowed, name
        assert all(
            change.requester_ref != identity.user_ref for change in every if change.id in listed
        )


def test_who_may_decide_has_the_last_word(
    catalog: Session, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule the decision adds later (here: no decisions on ``frozen``) hides the change too."""
    add_change(catalog, "frozen", by="ada.lovelace", minutes_ago=2)
    add_change(catalog, "open", by="ada.lovelace", minutes_ago=1)

    def refuse_frozen(change: Change, identity: Identity, admin_group: str) -> str | None:
        if change.service == "frozen":
            return "frozen"
        return may_review(change, identity, admin_group)

    monkeypatch.setattr(summary, "may_review", refuse_frozen)
    grace = person(engine, "grace.hopper")
    assert names(reviews_waiting(catalog, grace, ADMINS, 10).items) == ["open"]


def test_changes_i_may_not_decide_do_not_crowd_the_review_list_out(
    catalog: Session, engine: Engine
) -> None:
    """The query itself leaves out my changes and other teams', so older ones of those
    never fill the list's limit before the change I may decide on."""
    for index in range(3):
        add_change(catalog, f"mine-{index}", by="grace.hopper", minutes_ago=60 + index)
        add_change(catalog, f"ml-{index}", by="alan.turing", owner=ML, minutes_ago=90 + index)
    add_change(catalog, "adas", by="ada.lovelace", minutes_ago=1)
    grace = person(engine, "grace.hopper")
    waiting = reviews_waiting(catalog, grace, ADMINS, 1)
    assert names(waiting.items) == ["adas"] and not waiting.more


def test_recent_merges_are_the_latest_merged_changes(catalog: Session) -> None:
    add_change(catalog, "first", by="ada.lovelace", status=ChangeStatus.MERGED, minutes_ago=50)
    add_change(catalog, "second", by="grace.hopper", status=ChangeStatus.MERGED, minutes_ago=5)
    add_change(
        catalog, "third", by="alan.turing", owner=ML, status=ChangeStatus.MERGED, minutes_ago=20
    )
    add_change(catalog, "open", by="ada.lovelace")
    add_change(catalog, "rejected", by="ada.lovelace", status=ChangeStatus.REJECTED)
    assert names(recent_merges(catalog, 10).items) == ["second", "third", "first"]
    latest = recent_merges(catalog, 2)
    assert names(latest.items) == ["second", "third"] and latest.more


def _queries_of_summary(engine: Engine, name: str) -> int:
    identity = person(engine, name)
    with Session(engine) as fresh, count_queries(engine) as statements:
        build_summary(fresh, identity, ADMINS)
    return len(statements)


def test_the_summary_costs_the_same_queries_however_many_changes(
    catalog: Session, engine: Engine
) -> None:
    add_change(catalog, "one", by="grace.hopper", checks={"passed": 2})
    add_change(catalog, "mine", by="ada.lovelace", status=ChangeStatus.CHECKING)
    add_change(catalog, "done", by="grace.hopper", status=ChangeStatus.MERGED)
    few = _queries_of_summary(engine, "ada.lovelace")
    for index in range(15):
        add_change(catalog, f"more-{index}", by="grace.hopper", checks={"passed": 3, "warning": 1})
        add_change(catalog, f"mine-{index}", by="ada.lovelace", status=ChangeStatus.CHECKING)
        add_change(catalog, f"done-{index}", by="grace.hopper", status=ChangeStatus.MERGED)
    assert _queries_of_summary(engine, "ada.lovelace") == few <= 6


def test_the_summary_puts_it_together_with_check_counts(catalog: Session, engine: Engine) -> None:
    waiting = add_change(catalog, "graces", by="grace.hopper", checks={"passed": 3, "warning": 2})
    add_change(catalog, "mine", by="ada.lovelace", status=ChangeStatus.CHECKING)
    add_change(
        catalog,
        "done",
        by="grace.hopper",
        status=ChangeStatus.MERGED,
        approved_by="user:default/ada.lovelace",
    )
    ada = person(engine, "ada.lovelace")
    summary = build_summary(catalog, ada, ADMINS, Limits(services=1))
    assert (
        summary.is_admin
        and not build_summary(catalog, person(engine, "grace.hopper"), ADMINS).is_admin
    )
    assert [team.name for team in summary.teams] == ["platform-admins", "platform-team"]
    assert summary.teams[1].href == "/catalog/group/default/platform-team"
    assert names(summary.services.items) == ["flux"] and summary.services.more
    assert names(summary.my_changes.items) == ["mine"]
    assert names(summary.reviews.items) == ["graces"]
    assert summary.checks_of(waiting.id) == {"passed": 3, "warning": 2}
    assert summary.checks_of("unknown") == {}
    assert names(summary.merges.items) == ["done"]
