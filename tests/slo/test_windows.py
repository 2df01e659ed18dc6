"""Alert windows from data files: the built-in ones and custom files or folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.windows import builtin_windows, load_windows, parse_windows

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
