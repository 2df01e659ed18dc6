"""Live SLO state: the fixed queries, the join by sloth_id, thresholds, urgency and charts."""

from __future__ import annotations

import json
import math

import pytest

from portal.integrations.prometheus import Series
from portal.slo.burn import (
    SNAPSHOT_QUERIES,
    Level,
    Severity,
    conditions_of,
    fetch_snapshot,
    fetch_windows,
    join_samples,
    level_of,
    overview_windows,
)
from portal.slo.charts import Chart, budget_chart, burn_charts, charts_json, sli_range_query
from portal.slo.compiler.windows import builtin_windows
from portal.slo.detail import alert_rows
from portal.slo.overview import AlertState, build_overview, status_of
from portal.slo.runtime import Cached
from portal.slo.verdict import met_conditions
from tests.slo.live_data import FakeSLOPrometheus, record, slo_index_of, spec

DAY_MS = 86_400_000


def test_thirty_day_conditions_are_sloths_factors() -> None:
    windows = builtin_windows().get(30 * DAY_MS)
    assert windows is not None
    found = [(c.severity, c.short, c.long, round(c.factor, 6)) for c in conditions_of(windows)]
    assert found == [
        (Severity.PAGE, "5m", "1h", 14.4),
        (Severity.PAGE, "30m", "6h", 6.0),
        (Severity.TICKET, "2h", "1d", 3.0),
        (Severity.TICKET, "6h", "3d", 1.0),
    ]
    assert overview_windows(windows) == ["5m", "1h", "6h", "3d"]


def test_twenty_eight_day_factors_are_scaled_by_the_windows_data() -> None:
    windows = builtin_windows().get(28 * DAY_MS)
    assert windows is not None
    factors = [round(c.factor, 6) for c in conditions_of(windows)]
    # 2% of 28 days in 1 hour, 5% in 6 hours, 10% in 1 day, 10% in 3 days.
    assert factors == [13.44, 5.6, 2.8, 0.933333]


@pytest.mark.parametrize(
    ("burns", "window", "level"),
    [
        ({}, "5m", Level.NO_DATA),
        ({"5m": 0.5}, "5m", Level.OK),
        ({"5m": 1.0}, "5m", Level.ELEVATED),
        ({"5m": 14.4, "1h": 20}, "5m", Level.ELEVATED),  # the alert needs more than the factor
        ({"5m": 14.5, "1h": 20}, "5m", Level.PAGE),
        ({"5m": 20, "1h": 10}, "5m", Level.ELEVATED),  # over 14.4x alone: no alert, no red
        ({"5m": 20, "1h": 20}, "1h", Level.PAGE),
        ({"6h": 2.0, "3d": 1.5}, "6h", Level.TICKET),  # the slow ticket condition (1x)
        ({"6h": 2.0, "3d": 0.5}, "6h", Level.ELEVATED),  # its long window is under 1x
        ({"6h": 7.0, "30m": 7.0, "3d": 2}, "6h", Level.PAGE),  # slow page (6x) beats ticket
        ({"6h": 2.0, "3d": 20.0}, "3d", Level.TICKET),  # 3d only takes part in the ticket alert
    ],
)
def test_a_window_is_coloured_by_the_met_conditions_that_use_it(
    burns: dict[str, float], window: str, level: Level
) -> None:
    windows = builtin_windows().get(30 * DAY_MS)
    assert windows is not None
    met = met_conditions(conditions_of(windows), burns)
    assert level_of(window, burns.get(window), met) is level


def test_the_overview_issues_the_same_queries_for_three_or_two_hundred_slos() -> None:
    counts = []
    for services in (1, 40):
        sources = {
            f"{n}.yaml": spec(f"svc-{n}", *((f"slo-{i}", 99.9) for i in range(5 if n else 3)))
            for n in range(services)
        }
        slo_index = slo_index_of(sources)
        fake = FakeSLOPrometheus()
        for entry in slo_index.entries:
            record(fake, entry.slo, burn=0.5)
        snapshot = fetch_snapshot(fake)
        assert snapshot.available and len(snapshot.by_id) == len(slo_index.entries)
        counts.append(len(fake.calls))
    assert counts == [len(SNAPSHOT_QUERIES), len(SNAPSHOT_QUERIES)]


def test_samples_are_joined_by_sloth_id() -> None:
    slo_index = slo_index_of({"a.yaml": spec("checkout", ("availability", 99.9), ("latency", 99))})
    fake = FakeSLOPrometheus()
    availability, latency = (entry.slo for entry in slo_index.entries)
    record(fake, availability, burns={"5m": 20, "1h": 16, "30d": 0.2}, alerts=[("page", "firing")])
    record(fake, latency, burn=0.1)
    fake.add("slo:current_burn_rate:ratio", 3, sloth_id="")  # another rule's series: ignored
    live = join_samples({key: fake.query(query) for key, query in SNAPSHOT_QUERIES.items()})
    assert set(live) == {"checkout-availability", "checkout-latency"}
    first = live["checkout-availability"]
    assert first.service == "checkout" and first.slo == "availability"
    assert first.objective == 99.9 and first.period_days == 30
    assert first.current_burn == 20
    assert first.budget_remaining == pytest.approx(0.8)
    assert first.sli_errors["1h"] == pytest.approx(0.016)
    assert first.firing(Severity.PAGE) and not first.firing(Severity.TICKET)
    assert live["checkout-latency"].alerts == []


def test_unreachable_prometheus_gives_a_snapshot_that_says_so() -> None:
    snapshot = fetch_snapshot(FakeSLOPrometheus(up=False, url="http://prom:9090"))
    assert not snapshot.available and snapshot.configured
    assert snapshot.error is not None
    assert "Prometheus at http://prom:9090 is not reachable" in snapshot.error
    assert not fetch_snapshot(None).configured


def test_rows_are_sorted_by_urgency_and_carry_the_numbers() -> None:
    sources = {
        "a.yaml": spec("a", ("quiet", 99.9), ("paging", 99.9), ("ticketing", 99.9)),
        "b.yaml": spec("b", ("burning", 99.9), ("spent", 99.0), ("unknown", 99.5), owner="team-b"),
    }
    slo_index = slo_index_of(sources)
    slos = {entry.name: entry.slo for entry in slo_index.entries}
    fake = FakeSLOPrometheus()
    record(fake, slos["quiet"], burn=0.2)
    record(fake, slos["paging"], burn=30, alerts=[("page", "firing"), ("ticket", "firing")])
    record(fake, slos["ticketing"], burn=2, alerts=[("ticket", "firing")])
    record(fake, slos["burning"], burns={"5m": 10, "1h": 9, "6h": 5, "3d": 0.5})
    record(fake, slos["spent"], burn=0.9, remaining=-0.2)
    overview = build_overview(slo_index, fetch_snapshot(fake))
    names = [row.name for row in overview.rows]
    assert names == ["paging", "ticketing", "burning", "spent", "quiet", "unknown"]
    paging = overview.rows[0]
    assert paging.alert is AlertState.PAGE and overview.paging == 1 and overview.ticketing == 1
    assert [cell.window for cell in paging.burns] == ["5m", "1h", "6h", "3d"]
    assert [cell.level for cell in paging.burns] == [Level.PAGE] * 3 + [Level.TICKET]
    assert paging.sli == pytest.approx(1 - 30 * 0.001)
    # Time to exhaustion: a 30-day budget at 30x lasts one day.
    assert paging.time_to_exhaustion == pytest.approx(86_400)
    assert overview.rows[-1].has_data is False and overview.rows[-1].budget_remaining is None
    assert overview.teams == ["team-a", "team-b"] and overview.services == ["a", "b"]


def test_filters_keep_one_team_or_one_service() -> None:
    slo_index = slo_index_of(
        {"a.yaml": spec("a", ("x", 99.9)), "b.yaml": spec("b", ("y", 99.9), owner="team-b")}
    )
    snapshot = fetch_snapshot(FakeSLOPrometheus())
    assert [r.service for r in build_overview(slo_index, snapshot, team="team-b").rows] == ["b"]
    assert [r.service for r in build_overview(slo_index, snapshot, service="a").rows] == ["a"]
    assert build_overview(slo_index, snapshot, team="team-b", service="a").rows == []
    assert build_overview(slo_index, snapshot, team="nobody").total == 2


def test_an_slo_only_prometheus_knows_is_listed_with_its_own_numbers() -> None:
    other = slo_index_of({"x.yaml": spec("elsewhere", ("api", 99.0))}).entries[0].slo
    fake = FakeSLOPrometheus()
    record(fake, other, burn=2)
    overview = build_overview(slo_index_of({}), fetch_snapshot(fake))
    (row,) = overview.rows
    assert row.entry is None and row.sloth_id == "elsewhere-api"
    assert row.objective == 99.0 and row.period == "30d"
    assert row.burns[0].burn == pytest.approx(2)


def test_the_alert_table_shows_each_condition_with_both_burns() -> None:
    entry = slo_index_of({"a.yaml": spec("a", ("x", 99.9))}).entries[0]
    fake = FakeSLOPrometheus()
    record(
        fake, entry.slo, burns={"5m": 20, "1h": 15, "30m": 3, "6h": 2}, alerts=[("page", "pending")]
    )
    live = fetch_snapshot(fake).by_id["a-x"]
    assert "30m" in live.sli_errors  # every alert window, to tell which conditions are met
    assert "30d" not in live.sli_errors  # not the period: the detail page adds it
    live.sli_errors.update(fetch_windows(fake, "a-x"))
    rows = alert_rows(status_of(entry, live))
    page_quick, page_slow, ticket_quick, _ = rows
    assert page_quick.met and page_quick.alert_state == "pending"
    assert page_quick.error_ratio_threshold == pytest.approx(14.4 * 0.001)
    assert not page_slow.met and page_slow.short.burn == pytest.approx(3)
    assert ticket_quick.alert_state == "inactive"


def test_burn_charts_draw_each_window_pair_with_its_threshold() -> None:
    entry = slo_index_of({"a.yaml": spec("a", ("x", 99.9))}).entries[0]
    conditions = conditions_of(entry.slo.windows)
    series = [
        Series({"sloth_window": "5m"}, [(100.0, 0.02), (160.0, 0.01)]),
        Series({"sloth_window": "1h"}, [(160.0, 0.015), (220.0, math.nan)]),
    ]
    first = burn_charts(series, conditions, 99.9)[0]
    assert first.x == [100.0, 160.0]  # the NaN point is no point
    short, long, threshold = first.series
    assert short.values == [pytest.approx(20.0), pytest.approx(10.0)]
    assert long.values[0] is None and long.values[1] == pytest.approx(15)
    assert threshold.values == [pytest.approx(14.4)] * 2 and threshold.role == "threshold"
    budget = budget_chart([Series({}, [(1.0, 0.5), (2.0, 0.25)])])
    assert budget.series[0].values == [50.0, 25.0] and budget.has_data
    assert sli_range_query('x"y') == '{__name__=~"slo:sli_error:ratio_rate.+", sloth_id="x\\"y"}'


def test_chart_json_cannot_close_its_script_element() -> None:
    chart = Chart(id="c", title="</script><script>alert(1)</script>", unit="x", x=[1.0])
    encoded = str(charts_json([chart]))
    assert "<" not in encoded and ">" not in encoded
    assert json.loads(encoded)["charts"][0]["title"] == chart.title


def test_cached_values_are_reused_until_they_expire() -> None:
    calls: list[int] = []

    def load() -> int:
        calls.append(1)
        return len(calls)

    cache = Cached(load, seconds=60)
    assert cache.get() == 1 and cache.get() == 1
    cache.clear()
    assert cache.get() == 2
    expiring = Cached(load, seconds=0)
    assert expiring.get() != expiring.get()
