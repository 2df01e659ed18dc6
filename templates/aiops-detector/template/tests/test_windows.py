"""How strongly points count; anomalous points merged into windows; the severity of a score."""

from __future__ import annotations

import numpy as np
import pytest

from app.windows import (
    LONE_POINT_FACTOR,
    AnomalyPoint,
    corroborated,
    detector_name,
    merge_windows,
    severity_of,
    sustained,
)


def _point(
    at: float, score: float = 1.5, forest: bool = True, seasonal: bool = False
) -> AnomalyPoint:
    return AnomalyPoint(at, 0.0, score, forest, seasonal)


def test_points_within_the_gap_tolerance_make_one_window() -> None:
    """60 s apart with a tolerance of 180 s: one window; 600 s later: another."""
    points = [_point(0), _point(60, 2.5), _point(240, seasonal=True), _point(840)]
    first, second = merge_windows(points, gap_seconds=180)
    assert (first.start, first.end, first.points) == (0, 240, 3)
    assert (first.peak_score, first.peak_at, first.severity) == (2.5, 60, "critical")
    assert first.detector == "both"  # the forest at 0 and 60, the baseline at 240
    assert (second.start, second.end, second.points, second.detector) == (
        840,
        840,
        1,
        "isolation_forest",
    )
    assert second.severity == "warning"


def test_order_does_not_matter_and_nothing_gives_nothing() -> None:
    """Points are sorted by time first."""
    points = [_point(120), _point(0), _point(60)]
    (window,) = merge_windows(points, gap_seconds=60)
    assert (window.start, window.end) == (0, 120)
    assert merge_windows([], gap_seconds=60) == []


def test_a_gap_just_over_the_tolerance_splits() -> None:
    """The tolerance is inclusive."""
    assert len(merge_windows([_point(0), _point(180)], gap_seconds=180)) == 1
    assert len(merge_windows([_point(0), _point(181)], gap_seconds=180)) == 2


def test_severity_and_detector_names() -> None:
    """Critical from twice the threshold; the detector named as the API says it."""
    assert [severity_of(s) for s in (1.01, 1.99, 2.0, 9.0)] == [
        "warning",
        "warning",
        "critical",
        "critical",
    ]
    assert detector_name(True, False) == "isolation_forest"
    assert detector_name(False, True) == "seasonal"
    assert detector_name(True, True) == "both"
    with pytest.raises(ValueError, match="no detector"):
        detector_name(False, False)


def test_a_lone_point_counts_half_and_a_pair_counts_its_smaller_score() -> None:
    """Steps of 60 s with a tolerance of 180 s; after a longer gap a point is alone again."""
    times = np.array([0.0, 60, 120, 180, 600, 660])
    scores = np.array([0.0, 8.0, 6.0, 0.0, 8.0, 2.0])
    evidence = corroborated(times, scores, 180.0)
    assert evidence.tolist() == [0.0, 8.0 / LONE_POINT_FACTOR, 6.0, 0.0, 4.0, 2.0]
    # Scaling the scores scales the evidence: a line placed on one is placed on the other.
    assert np.allclose(corroborated(times, 3 * scores, 180.0), 3 * evidence)


def test_sustained_evidence_is_the_smallest_of_a_run_without_gaps() -> None:
    """Three points in a row: the first two count 0, then the smallest of the last three."""
    times = np.array([0.0, 60, 120, 180, 240, 900, 960, 1020])
    scores = np.array([5.0, 4.0, 6.0, 7.0, 1.0, 9.0, 9.0, 9.0])
    assert sustained(times, scores, 180.0, 3).tolist() == [0, 0, 4, 4, 1, 0, 0, 9]
    assert sustained(times, scores, 180.0, 1).tolist() == scores.tolist()
