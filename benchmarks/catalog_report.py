"""The catalog benchmark's table: its rows and their verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.timing import percentile


@dataclass
class Row:
    """One line of the table: a measure, its figures, its target and verdict."""

    name: str
    cells: tuple[str, str, str]  # p50, p95, max (or one value in the p95 column)
    target: str = ""
    verdict: str = ""


def latency_row(name: str, samples: list[float], target_ms: float | None = None) -> Row:
    """Return the p50, p95 and max of ``samples`` (ms), judged against ``target_ms``'s p95."""
    p50, p95 = percentile(samples, 0.50), percentile(samples, 0.95)
    row = Row(name, (f"{p50:.2f} ms", f"{p95:.2f} ms", f"{max(samples):.2f} ms"))
    if target_ms is not None:
        row.target = f"p95 < {target_ms:g} ms"
        row.verdict = "PASS" if p95 < target_ms else "FAIL"
    return row


def print_table(rows: list[Row]) -> None:
    """Print ``rows`` as an aligned table with a header."""
    headers = ("measure", "p50", "p95", "max", "target", "result")
    lines = [(row.name, *row.cells, row.target, row.verdict) for row in rows]
    widths = [max(len(line[i]) for line in [headers, *lines]) for i in range(len(headers))]
    for index, line in enumerate([headers, *lines]):
        cells = [
            cell.ljust(width) if column in (0, 4, 5) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
