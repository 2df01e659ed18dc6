"""Alert windows: the built-in files, custom files or folders, and Pyrra's scaled windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.promql import format_duration, parse_duration
from portal.slo.compiler.scaled_windows import resolve_period
from portal.slo.compiler.windows import (
    AlertWindows,
    builtin_windows,
    load_windows,
    parse_windows,
)

DAY = 86_400_000


def test_builtin_windows_are_sloths_google_windows(sloth_dir: Path) -> None:
    catalog = builtin_windows()

    assert sorted(catalog.by_period) == [28 * DAY, 30 * DAY]
    for name in ("google-30d.yaml", "google-28d.yaml"):
        (expected,) = parse_windows(name, (sloth_dir / "windows" / name).read_text())
        assert catalog.get(expected.period_ms) == expected


def test_burn_factors() -> None:
    windows = builtin_windows().get(30 * DAY)
    assert windows is not None
    factors = [
        windows.burn_factor(window)
        for window in (
            windows.page_quick,
            windows.page_slow,
            windows.ticket_quick,
            windows.ticket_slow,
        )
    ]
    assert factors == [14.4, 6, 3, 1]
    assert [window / 60_000 for window in windows.sli_windows()] == [
        5,
        30,
        60,
        120,
        360,
        1440,
        4320,
    ]


def test_custom_windows_folder_replaces_the_builtin_ones(sloth_dir: Path, tmp_path: Path) -> None:
    for name in ("7d.yaml", "custom-30d.yaml"):
        (tmp_path / name).write_text((sloth_dir / "windows" / name).read_text())

    catalog = load_windows(tmp_path)

    assert catalog.periods() == "1w, 30d"
    windows = catalog.get(30 * DAY)
    assert windows is not None
    assert windows.page_quick.short_ms == 2 * 60_000  # custom-30d, not Google's 5m


def test_two_files_for_one_period_are_an_error(sloth_dir: Path) -> None:
    # Sloth's examples folder holds google-30d.yaml and custom-30d.yaml.
    with pytest.raises(InvalidSpecError, match="sloPeriod 30d is already defined"):
        load_windows(sloth_dir / "windows")


def test_custom_windows_file(sloth_dir: Path) -> None:
    catalog = load_windows(sloth_dir / "integration" / "windows" / "7d.yaml")
    assert catalog.periods() == "1w"
    windows = catalog.get(7 * DAY)
    assert windows is not None
    assert windows.ticket_slow.long_ms == 3 * DAY  # written as 72h


def test_windows_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpecError, match="no such windows file or folder"):
        load_windows(tmp_path / "missing")
    with pytest.raises(InvalidSpecError, match="no AlertWindows files"):
        load_windows(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: sloth.slok.dev/v1\nkind: AlertWindow\nspec: {}\n")
    with pytest.raises(InvalidSpecError) as caught:
        load_windows(bad)
    assert [error.field for error in caught.value.errors] == [
        "kind",
        "spec.sloPeriod",
        "spec.page",
        "spec.ticket",
    ]


MINUTE = 60_000
HOUR = 60 * MINUTE

# Pyrra's alert windows and factors, as its own tests print them (pyrra-dev/pyrra
# slo/rules_test.go at 1ba95af: the 7d case "grpc-latency", the 2w case "operator-ratio"):
# (short, long, factor) for page quick, page slow, ticket quick, ticket slow.
PYRRA_7D = [
    (1 * MINUTE, 15 * MINUTE, 14),
    (8 * MINUTE, 90 * MINUTE, 7),
    (30 * MINUTE, 6 * HOUR, 2),
    (90 * MINUTE, 1 * DAY, 1),
]
PYRRA_2W = [
    # 2.5 minutes, rounded up as Go rounds halves (away from zero; Python's round() gives 2).
    (3 * MINUTE, 30 * MINUTE, 14),
    (15 * MINUTE, 3 * HOUR, 7),
    (1 * HOUR, 12 * HOUR, 2),
    (3 * HOUR, 2 * DAY, 1),
]


def conditions(windows: AlertWindows) -> list[tuple[int, int, float]]:
    pairs = (windows.page_quick, windows.page_slow, windows.ticket_quick, windows.ticket_slow)
    return [(w.short_ms, w.long_ms, windows.burn_factor(w)) for w in pairs]


@pytest.mark.parametrize(
    ("period", "expected"), [("7d", PYRRA_7D), ("1w", PYRRA_7D), ("2w", PYRRA_2W)]
)
def test_other_periods_get_pyrras_windows(period: str, expected: list[Any]) -> None:
    windows = resolve_period(builtin_windows(), period)

    assert conditions(windows) == expected
    assert windows.period_ms == parse_duration(period)
    assert format_duration(windows.period_ms) == {"2w": "2w"}.get(period, "1w")


@pytest.mark.parametrize("period", ["28d", "4w", "30d"])
def test_28d_and_30d_keep_sloths_windows(period: str) -> None:
    windows = resolve_period(builtin_windows(), period)

    assert windows == builtin_windows().get(parse_duration(period))
    # Sloth's budget shares (2, 5, 10, 10 percent), not Pyrra's fixed factors.
    assert [w.factor for w in (windows.page_quick, windows.ticket_slow)] == [None, None]
    assert windows.ticket_slow.long_ms == 3 * DAY


def test_a_windows_file_wins_over_scaling(sloth_dir: Path) -> None:
    catalog = load_windows(sloth_dir / "integration" / "windows" / "7d.yaml")
    assert resolve_period(catalog, "7d") == catalog.get(7 * DAY)
    # Periods the file does not cover are still scaled.
    assert conditions(resolve_period(catalog, "2w")) == PYRRA_2W


def test_periods_too_short_to_scale_are_refused() -> None:
    with pytest.raises(ValueError, match=r"the SLO period 2d is too short .* is 2d19h12m\)"):
        resolve_period(builtin_windows(), "2d")
    # From 2.8 days on, the page alert's short window (period / 8064) rounds to a minute.
    windows = resolve_period(builtin_windows(), "2d19h12m")
    assert windows.page_quick.short_ms == MINUTE
