"""One status per SLO: data coverage, no verdict without enough data, alerts never green.

Against a fake Prometheus (``FakeSLOPrometheus``, which also answers the coverage query)
and the plain fake (which refuses it, as a store without subqueries would).
"""

from __future__ import annotations

from typing import Any

import pytest

from portal.integrations.prometheus import FakePrometheus
from portal.slo.burn import ActiveAlert, conditions_of, fetch_snapshot, snapshot_queries
from portal.slo.compiler.windows import AlertWindows, builtin_windows
from portal.slo.coverage import Coverage, coverage_of, coverage_query, minimum_ms
from portal.slo.detail import alert_rows
from portal.slo.overview import SLOStatus, build_overview, status_of
from portal.slo.present import span, window_name
from portal.slo.runtime import lowest_budget
from portal.slo.verdict import ConditionState, Tone, Verdict, judge, met_conditions
from tests.slo.live_data import FakeSLOPrometheus, record, slo_index_of, spec

DAY = 86_400


def _thirty_days() -> AlertWindows:
    windows = builtin_windows().get(30 * DAY * 1000)
    assert windows is not None
    return windows


THIRTY_DAYS = _thirty_days()


def coverage(seconds: float | None) -> Coverage:
    return coverage_of(seconds, THIRTY_DAYS, THIRTY_DAYS.period_ms)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (20, "less than a minute"),
        (15 * 60 + 59, "15 minutes"),
        (3600, "1 hour"),
        (2 * 3600 + 59 * 60 + 59, "2 hours 59 minutes"),  # rounded down, never up
        (DAY + 5 * 60, "1 day"),  # no hour in between: stop at the gap
        (3 * DAY + 4 * 3600, "3 days 4 hours"),
    ],
)
def test_spans_read_as_words(seconds: float, text: str) -> None:
    assert span(seconds) == text


def test_windows_are_named_as_adjectives() -> None:
    assert window_name(30 * DAY * 1000) == "30-day"
    assert window_name(12 * 3600 * 1000) == "12-hour"
    assert window_name(None) == "an unknown"


def test_coverage_says_how_much_of_the_window_has_data() -> None:
    young = coverage(15 * 60)
    assert young.text == "15 minutes of the 30-day window"
    assert not young.enough and not young.full
    assert young.needed == "3 days"
    assert coverage(40 * DAY).text == "the whole 30-day window"  # capped at the period
    assert coverage(40 * DAY).covered_seconds == 30 * DAY and coverage(40 * DAY).full
    unknown = coverage(None)
    assert unknown.text == "coverage unknown" and not unknown.enough


def test_a_verdict_needs_the_longest_alert_window() -> None:
    assert minimum_ms(THIRTY_DAYS, THIRTY_DAYS.period_ms) == 3 * DAY * 1000
    assert not coverage(3 * DAY - 60).enough
    assert coverage(3 * DAY).enough
    twenty_eight = builtin_windows().get(28 * DAY * 1000)
    assert twenty_eight is not None
    assert minimum_ms(twenty_eight, twenty_eight.period_ms) == 3 * DAY * 1000
    # No windows data for the period: a tenth of it.
    assert minimum_ms(None, 90 * DAY * 1000) == 9 * DAY * 1000
    assert minimum_ms(None, None) is None


def test_the_coverage_query_looks_over_the_range_in_three_passes() -> None:
    query = coverage_query(30 * DAY * 1000)
    assert query.startswith("time() - min by (sloth_id) (")
    assert '[30d:1h]), "coverage_pass", "coarse"' in query
    assert '[1d:1m]), "coverage_pass", "fine"' in query
    assert query.endswith(' or timestamp(slo:current_burn_rate:ratio{sloth_id!=""}))')
    assert "[4w:1h]" in coverage_query(28 * DAY * 1000)
    assert snapshot_queries()["coverage"] == coverage_query()


def judged(
    *,
    seconds: float | None = 30 * DAY,
    alerts: tuple[ActiveAlert, ...] = (),
    burns: dict[str, float] | None = None,
    sli: float | None = 0.9995,
    remaining: float | None = 0.5,
) -> tuple[Verdict, Tone, str, str]:
    met = met_conditions(conditions_of(THIRTY_DAYS), burns or {})
    judgement = judge(
        alerts=alerts,
        met=met,
        has_data=True,
        coverage=coverage(seconds),
        sli=sli,
        objective=99.9,
        budget_remaining=remaining,
    )
    return judgement.verdict, judgement.tone, judgement.label, judgement.note


def test_enough_data_and_no_alert_meets_the_objective() -> None:
    assert judged() == (Verdict.MEETS, Tone.OK, "meets the objective", "meets the objective")


def test_a_firing_ticket_alert_is_never_green_nor_meets_the_objective() -> None:
    verdict, tone, label, note = judged(alerts=(ActiveAlert("X", "ticket", "firing"),))
    assert (verdict, tone, label) == (Verdict.TICKET, Tone.WARN, "ticket firing")
    assert note == "within the objective so far, but the ticket alert fires"


def test_a_met_condition_counts_even_before_its_alert_fires() -> None:
    # Both ticket-slow windows over 1x, no ALERTS series (another rule group lags).
    verdict, tone, label, _ = judged(burns={"6h": 2.0, "3d": 1.5})
    assert (verdict, tone, label) == (Verdict.TICKET, Tone.WARN, "ticket condition met")
    # One window over the factor is not a condition met.
    assert judged(burns={"6h": 2.0, "3d": 0.5})[0] is Verdict.MEETS
    # The page outranks the ticket.
    assert judged(burns={"5m": 20, "1h": 20, "6h": 2, "3d": 2})[0] is Verdict.PAGE


def test_without_enough_data_no_verdict_about_the_period() -> None:
    verdict, tone, label, note = judged(seconds=15 * 60)
    assert (verdict, tone, label) == (Verdict.NOT_ENOUGH_DATA, Tone.NEUTRAL, "not enough data yet")
    assert note == "not enough data yet (15 minutes of the 30-day window)"
    # An overspent budget on 15 minutes of data is no "exhausted" either.
    assert judged(seconds=15 * 60, sli=0.99, remaining=-9)[0] is Verdict.NOT_ENOUGH_DATA
    assert judged(seconds=None)[0] is Verdict.NOT_ENOUGH_DATA


def test_alerts_show_whatever_the_coverage() -> None:
    verdict, tone, _, note = judged(seconds=15 * 60, alerts=(ActiveAlert("X", "page", "firing"),))
    assert (verdict, tone) == (Verdict.PAGE, Tone.BAD)
    assert note == "not enough data yet (15 minutes of the 30-day window)"


def test_with_enough_data_an_overspent_budget_is_exhausted() -> None:
    verdict, tone, label, _ = judged(sli=0.998, remaining=-1.0)
    assert (verdict, tone, label) == (Verdict.EXHAUSTED, Tone.BAD, "budget exhausted")


def overview_of(**records: dict[str, Any]) -> dict[str, SLOStatus]:
    sources = {"a.yaml": spec("a", *((name, 99.9) for name in records))}
    index = slo_index_of(sources)
    fake = FakeSLOPrometheus()
    for entry in index.entries:
        record(fake, entry.slo, **records[entry.name])
    return {row.name: row for row in build_overview(index, fetch_snapshot(fake)).rows}


def test_rows_carry_their_coverage_and_one_judgement() -> None:
    rows = overview_of(
        young={"burn": 0.1, "coverage": 900.0},
        ticketing={"burn": 0.5, "burns": {"6h": 2.0, "3d": 1.5}, "alerts": [("ticket", "firing")]},
        steady={"burn": 0.1},
    )
    young, ticketing, steady = rows["young"], rows["ticketing"], rows["steady"]
    assert young.coverage.text == "15 minutes of the 30-day window"
    assert young.judgement.verdict is Verdict.NOT_ENOUGH_DATA
    assert ticketing.judgement.tone is Tone.WARN
    assert steady.judgement.verdict is Verdict.MEETS
    # Urgency follows the judgement: the ticket first, the young SLO ranks with the others.
    assert list(rows) == ["ticketing", "steady", "young"]


def test_a_refused_coverage_query_leaves_the_numbers_and_claims_no_verdict() -> None:
    entry = slo_index_of({"a.yaml": spec("a", ("x", 99.9))}).entries[0]
    fake = FakePrometheus()  # answers selectors only: the coverage query is refused
    record(fake, entry.slo, burn=0.1, coverage=None)
    snapshot = fetch_snapshot(fake)
    assert snapshot.available and snapshot.coverage_error is not None
    row = status_of(entry, snapshot.by_id["a-x"])
    assert row.current_burn == pytest.approx(0.1)
    assert row.judgement.verdict is Verdict.NOT_ENOUGH_DATA
    assert row.judgement.note == "not enough data yet (coverage unknown)"


def test_an_unreachable_prometheus_still_fails_the_whole_snapshot() -> None:
    snapshot = fetch_snapshot(FakeSLOPrometheus(up=False))
    assert not snapshot.available and snapshot.error is not None


def test_the_alert_table_agrees_with_the_status() -> None:
    entry = slo_index_of({"a.yaml": spec("a", ("x", 99.9))}).entries[0]
    fake = FakeSLOPrometheus()
    # The slow ticket condition is met; the ticket alert fires from it; the page alert not.
    record(fake, entry.slo, burn=0.5, burns={"6h": 2.0, "3d": 1.5}, alerts=[("ticket", "firing")])
    row = status_of(entry, fetch_snapshot(fake).by_id["a-x"])
    states = {(r.condition.severity.value, r.condition.speed): r for r in alert_rows(row)}
    assert states["ticket", "slow"].alert_state is ConditionState.FIRING
    # The alert fires from the slow condition: the quick one, under its threshold, is not.
    assert states["ticket", "quick"].alert_state is ConditionState.INACTIVE
    assert states["page", "quick"].alert_state is ConditionState.INACTIVE

    # Met but not firing (the alert rule lags or is disabled): "met", never "inactive".
    fake = FakeSLOPrometheus()
    record(fake, entry.slo, burn=0.5, burns={"6h": 2.0, "3d": 1.5})
    row = status_of(entry, fetch_snapshot(fake).by_id["a-x"])
    ticket_slow = next(r for r in alert_rows(row) if r.condition.speed == "slow" and r.met)
    assert ticket_slow.alert_state is ConditionState.MET
    assert row.judgement.verdict is Verdict.TICKET


def test_error_budget_policies_ignore_slos_without_enough_data() -> None:
    rows = overview_of(
        young={"burn": 5.0, "remaining": -3.0, "coverage": 3600.0},
        old={"burn": 0.1, "remaining": 0.7},
    )
    assert lowest_budget(rows.values()) == pytest.approx(0.7)
    only_young = overview_of(young={"burn": 5.0, "remaining": -3.0, "coverage": 3600.0})
    assert lowest_budget(only_young.values()) is None
