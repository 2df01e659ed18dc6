"""Alert windows as data: Sloth's ``AlertWindows`` files, one per SLO period.

The multiwindow, multi-burn-rate parameters (which error budget share each alert spends,
over which short and long windows) live in YAML files, not in code: ``google-30d.yaml``
and ``google-28d.yaml`` ship in ``windows/`` (copied from Sloth, see its README), and a
custom file or folder replaces them, as Sloth's ``--slo-period-windows-path`` does. A
period no file covers gets Pyrra's windows scaled to it (``scaled_windows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.slo.compiler.errors import Document, InvalidSpecError, SpecError, read_documents
from portal.slo.compiler.promql import duration_hours, format_duration, parse_duration

ALERT_WINDOWS_KIND = "AlertWindows"
ALERT_WINDOWS_API_VERSION = "sloth.slok.dev/v1"


def _duration(value: str) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r} must be longer than 0")
    return value


class WindowSpec(BaseModel):
    """One alert condition: spend ``errorBudgetPercent`` of the budget over ``longWindow``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    errorBudgetPercent: Annotated[float, Field(gt=0, le=100)]  # noqa: N815 (Sloth's field names)
    shortWindow: str  # noqa: N815
    longWindow: str  # noqa: N815

    _durations = field_validator("shortWindow", "longWindow")(_duration)


class SeverityWindows(BaseModel):
    """The quick and the slow condition of one severity (page or ticket)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quick: WindowSpec
    slow: WindowSpec


class AlertWindowsSpec(BaseModel):
    """The SLO period and the page and ticket windows for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sloPeriod: str  # noqa: N815
    page: SeverityWindows
    ticket: SeverityWindows

    _period = field_validator("sloPeriod")(_duration)


class AlertWindowsFile(BaseModel):
    """An ``AlertWindows`` document (``apiVersion: sloth.slok.dev/v1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apiVersion: Literal["sloth.slok.dev/v1"]  # noqa: N815
    kind: Literal["AlertWindows"]
    metadata: dict[str, Any] | None = None
    spec: AlertWindowsSpec


@dataclass(frozen=True, slots=True)
class Window:
    """One alert condition in milliseconds.

    ``factor`` is set when the burn-rate factor is given rather than derived from the
    budget share (Pyrra's windows, see ``scaled_windows``).
    """

    error_budget_percent: float
    short_ms: int
    long_ms: int
    factor: float | None = None


@dataclass(frozen=True, slots=True)
class AlertWindows:
    """The windows of one SLO period, with the burn-rate factors derived from them."""

    period_ms: int
    page_quick: Window
    page_slow: Window
    ticket_quick: Window
    ticket_slow: Window
    source: str = ""

    @property
    def period(self) -> str:
        """The period as Prometheus prints it (``30d``, ``4w``)."""
        return format_duration(self.period_ms)

    def burn_factor(self, window: Window) -> float:
        """How many times faster than "exactly on budget" this condition burns.

        Computed in Sloth's order of operations so the printed float is identical
        (``5.6000000000000005`` for 5% of 28 days over 6 hours).
        """
        if window.factor is not None:
            return window.factor
        needed_hours = window.error_budget_percent * duration_hours(self.period_ms) / 100
        return needed_hours / duration_hours(window.long_ms)

    def sli_windows(self) -> list[int]:
        """Every short and long window the alerts need, shortest first, without repeats."""
        windows = {
            ms
            for window in (self.page_quick, self.page_slow, self.ticket_quick, self.ticket_slow)
            for ms in (window.short_ms, window.long_ms)
        }
        return sorted(windows)


@dataclass(frozen=True)
class WindowsCatalog:
    """The windows files in use, by SLO period."""

    by_period: dict[int, AlertWindows]

    def get(self, period_ms: int) -> AlertWindows | None:
        """Return the windows of a period, or None when no file covers it."""
        return self.by_period.get(period_ms)

    def periods(self) -> str:
        """List the covered periods for error messages (``28d, 30d``)."""
        return ", ".join(format_duration(ms) for ms in sorted(self.by_period)) or "none"


def _window_problems(windows: AlertWindows) -> list[tuple[tuple[str | int, ...], str]]:
    """Windows that cannot work: the "does not divide" and "longer than the period" cases."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    named = {
        ("page", "quick"): windows.page_quick,
        ("page", "slow"): windows.page_slow,
        ("ticket", "quick"): windows.ticket_quick,
        ("ticket", "slow"): windows.ticket_slow,
    }
    for (severity, speed), window in named.items():
        where: tuple[str | int, ...] = ("spec", severity, speed)
        short, long = format_duration(window.short_ms), format_duration(window.long_ms)
        if window.short_ms >= window.long_ms:
            problems.append(
                ((*where, "shortWindow"), f"{short} must be shorter than longWindow {long}")
            )
        elif window.long_ms % window.short_ms:
            problems.append(((*where, "shortWindow"), f"{short} does not divide longWindow {long}"))
        if window.long_ms > windows.period_ms:
            problems.append(
                ((*where, "longWindow"), f"{long} is longer than sloPeriod {windows.period}")
            )
    # The period SLI averages the shortest SLI series over the period: whole samples only.
    shortest = windows.page_quick.short_ms
    if windows.period_ms % shortest:
        problems.append(
            (
                ("spec", "sloPeriod"),
                f"{windows.period} is not a whole number of page.quick.shortWindow "
                f"{format_duration(shortest)}",
            )
        )
    return problems


def _from_model(model: AlertWindowsSpec, source: str) -> AlertWindows:
    def window(spec: WindowSpec) -> Window:
        short, long = parse_duration(spec.shortWindow), parse_duration(spec.longWindow)
        return Window(spec.errorBudgetPercent, short, long)

    return AlertWindows(
        period_ms=parse_duration(model.sloPeriod),
        page_quick=window(model.page.quick),
        page_slow=window(model.page.slow),
        ticket_quick=window(model.ticket.quick),
        ticket_slow=window(model.ticket.slow),
        source=source,
    )


def parse_windows(source: str, text: str) -> list[AlertWindows]:
    """Read the AlertWindows documents of one file; raise InvalidSpecError listing every problem."""
    documents, errors = read_documents(source, text)
    found: list[AlertWindows] = []
    for document in documents:
        windows = _parse_document(document, errors)
        if windows is not None:
            found.append(windows)
    if not documents and not errors:
        errors.append(SpecError(source, "no AlertWindows document"))
    if errors:
        raise InvalidSpecError(errors)
    return found


def _parse_document(document: Document, errors: list[SpecError]) -> AlertWindows | None:
    try:
        model = AlertWindowsFile.model_validate(document.data)
    except ValidationError as error:
        errors.extend(document.validation_errors(error))
        return None
    windows = _from_model(model.spec, document.source)
    problems = _window_problems(windows)
    errors.extend(document.error(location, message) for location, message in problems)
    return None if problems else windows


def catalog_of(windows: list[AlertWindows]) -> WindowsCatalog:
    """Index windows by period; two files for one period is an error (as in Sloth)."""
    by_period: dict[int, AlertWindows] = {}
    errors = []
    for item in windows:
        if item.period_ms in by_period:
            other = by_period[item.period_ms].source
            errors.append(
                SpecError(item.source, f"sloPeriod {item.period} is already defined in {other}")
            )
        by_period.setdefault(item.period_ms, item)
    if errors:
        raise InvalidSpecError(errors)
    return WindowsCatalog(by_period)


@cache
def builtin_windows() -> WindowsCatalog:
    """Load the windows shipped with the portal (Google SRE workbook values, 30d and 28d)."""
    folder = resources.files("portal.slo.compiler") / "windows"
    found: list[AlertWindows] = []
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if entry.name.endswith((".yaml", ".yml")):
            found.extend(parse_windows(entry.name, entry.read_text(encoding="utf-8")))
    return catalog_of(found)


def load_windows(path: Path) -> WindowsCatalog:
    """Load a custom windows file, or every ``*.yaml``/``*.yml`` under a folder (recursively).

    Custom windows replace the built-in ones, as in Sloth.
    """
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise InvalidSpecError(
                [SpecError(str(path), "no AlertWindows files (*.yaml) in folder")]
            )
    elif path.is_file():
        files = [path]
    else:
        raise InvalidSpecError([SpecError(str(path), "no such windows file or folder")])
    found: list[AlertWindows] = []
    errors: list[SpecError] = []
    for file in files:
        try:
            found.extend(parse_windows(str(file), file.read_text(encoding="utf-8")))
        except InvalidSpecError as error:
            errors.extend(error.errors)
    if errors:
        raise InvalidSpecError(errors)
    return catalog_of(found)
