"""Series as Sloth's rules record them, for the fake Prometheus of the SLO page tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from portal.integrations.prometheus import FakePrometheus
from portal.slo.promql import format_duration, go_float_fixed
from portal.slo.resolve import ResolvedSLO
from portal.slo.store import Catalogue, CatalogueEntry, SpecFile, owner_of, resolve_files

EVERY_WINDOW = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def catalogue_of(sources: Mapping[str, str], owners: Mapping[str, str] | None = None) -> Catalogue:
    """A catalogue of spec texts (file name -> YAML), as the store builds it."""
    files = (SpecFile(name, text, "local") for name, text in sources.items())
    resolved, problems = resolve_files(files)
    entries = tuple(
        CatalogueEntry(slo, spec, owner_of(slo, dict(owners or {}))) for slo, spec in resolved
    )
    return Catalogue(tuple(sorted(entries, key=lambda e: e.sloth_id)), tuple(problems))


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
) -> None:
    """Add the series Sloth's rules would record for ``slo`` burning at ``burn`` (per window).

    ``alerts`` are ``(severity, state)`` pairs of ``ALERTS`` series.
    """
    ids = {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}
    budget = (100 - slo.objective) / 100
    period = format_duration(slo.windows.period_ms)
    rates = {window: burn for window in (*EVERY_WINDOW, period)}
    rates.update(burns or {})
    fake.add("sloth_slo_info", 1, **ids, sloth_objective=go_float_fixed(slo.objective))
    fake.add("slo:time_period:days", slo.windows.period_ms / 86_400_000, **ids)
    fake.add("slo:current_burn_rate:ratio", rates["5m"], **ids)
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
