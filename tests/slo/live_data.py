"""Series as Sloth's rules record them, for the fake Prometheus of the SLO page tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from portal.integrations.prometheus import FakePrometheus, Sample
from portal.slo.compiler.promql import format_duration, go_float_fixed
from portal.slo.compiler.resolve import ResolvedSLO
from portal.slo.store import IndexedSLO, SLOIndex, SpecFile, owner_of, resolve_files

EVERY_WINDOW = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
COVERAGE = "fake:coverage_seconds"
"""The fake's stand-in series for the answer of the coverage query (seconds of data)."""
FULL = -1.0
"""``record(coverage=FULL)``: data over the SLO's whole period."""


@dataclass
class FakeSLOPrometheus(FakePrometheus):
    """A fake Prometheus that also answers the SLO pages' coverage query.

    The plain fake answers only selectors; the coverage query (``time() - min by
    (sloth_id) (...)``) is answered with the ``fake:coverage_seconds`` samples that
    :func:`record` adds, one per SLO. Calls are recorded as the plain fake does.
    """

    def query(self, promql: str) -> list[Sample]:
        """Answer the coverage query from the stand-in series, anything else as the fake."""
        if promql.startswith("time() - min by (sloth_id)") and "timestamp(" in promql:
            self.calls.append(("query", promql))
            if not self.up:
                return super().query(promql)  # raises as an unreachable Prometheus
            return [
                Sample({"sloth_id": sample.labels["sloth_id"]}, sample.value)
                for sample in self.samples
                if sample.labels.get("__name__") == COVERAGE
            ]
        return super().query(promql)


def slo_index_of(sources: Mapping[str, str], owners: Mapping[str, str] | None = None) -> SLOIndex:
    """An SLO index of spec texts (file name -> YAML), as the store builds it."""
    files = (SpecFile(name, text, "local") for name, text in sources.items())
    resolved, problems = resolve_files(files)
    entries = tuple(
        IndexedSLO(slo, spec, owner_of(slo, dict(owners or {}))) for slo, spec in resolved
    )
    return SLOIndex(tuple(sorted(entries, key=lambda e: e.sloth_id)), tuple(problems))


def spec(service: str, *slos: tuple[str, float], owner: str = "team-a") -> str:
    """A Sloth prometheus/v1 spec with events SLIs and page and ticket alerts."""
    lines = [
        'version: "prometheus/v1"',
        f'service: "{service}"',
        "labels:",
        f'  owner: "{owner}"',
        "slos:",
    ]
    window = "{{.window}}"
    for name, objective in slos:
        selector = f'job="{service}"'
        errors = f'{selector},code=~"5.."'
        lines += [
            f'  - name: "{name}"',
            f"    objective: {objective}",
            "    sli:",
            "      events:",
            f"        error_query: sum(rate(http_requests_total{{{errors}}}[{window}]))",
            f"        total_query: sum(rate(http_requests_total{{{selector}}}[{window}]))",
            "    alerting:",
            f"      name: {service.title().replace('-', '')}{name.title().replace('-', '')}",
        ]
    return "\n".join(lines) + "\n"


def record(
    fake: FakePrometheus,
    slo: ResolvedSLO,
    *,
    burns: Mapping[str, float] | None = None,
    burn: float = 0.0,
    remaining: float | None = None,
    alerts: Iterable[tuple[str, str]] = (),
    coverage: float | None = FULL,
) -> None:
    """Add the series Sloth's rules would record for ``slo`` burning at ``burn`` (per window).

    ``alerts`` are ``(severity, state)`` pairs of ``ALERTS`` series; ``coverage`` is the
    seconds since the first sample (``FULL``: the whole period; None: not answered).
    """
    ids = {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}
    budget = (100 - slo.objective) / 100
    period = format_duration(slo.windows.period_ms)
    rates = {window: burn for window in (*EVERY_WINDOW, period)}
    rates.update(burns or {})
    fake.add("sloth_slo_info", 1, **ids, sloth_objective=go_float_fixed(slo.objective))
    fake.add("slo:time_period:days", slo.windows.period_ms / 86_400_000, **ids)
    fake.add("slo:current_burn_rate:ratio", rates["5m"], **ids)
    if coverage is not None:
        seconds = slo.windows.period_ms / 1000 if coverage == FULL else coverage
        fake.add(COVERAGE, seconds, sloth_id=slo.id)
    left = 1 - rates[period] if remaining is None else remaining
    fake.add("slo:period_error_budget_remaining:ratio", left, **ids)
    for window, rate in rates.items():
        fake.add(f"slo:sli_error:ratio_rate{window}", rate * budget, **ids, sloth_window=window)
    for severity, state in alerts:
        fake.add(
            "ALERTS",
            1,
            **ids,
            alertname=slo.page.name if slo.page else "SLOAlert",
            alertstate=state,
            sloth_severity=severity,
        )
