"""Resolve validated specs into SLOs ready for rule generation.

Resolution merges labels (service, SLO, then the generator's extra labels, as Sloth does),
compiles the ``{{.window}}`` query templates, applies the contrib plugins and picks the
alert windows of the SLO's period (its AlertWindows file, else Pyrra's scaled windows).
Every problem found is collected, never just the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from portal.slo.compiler.documents import SpecDocument
from portal.slo.compiler.errors import SpecError
from portal.slo.compiler.plugins import PluginEffects, apply_plugins
from portal.slo.compiler.scaled_windows import resolve_period
from portal.slo.compiler.spec import SLO, Alert, KubernetesMeta
from portal.slo.compiler.windows import AlertWindows, WindowsCatalog

# Go text/template actions Sloth allows in queries: {{.window}}, with optional trim markers.
_WINDOW_ACTION = re.compile(r"\{\{(-?)\s*\.window\s*(-?)\}\}")


@dataclass(frozen=True, slots=True)
class QueryTemplate:
    """A query split at its ``{{.window}}`` placeholders (rendering is a join: fast)."""

    parts: tuple[str, ...]

    def render(self, window: str) -> str:
        """Fill every placeholder with ``window`` (``5m``, ``1d``)."""
        return window.join(self.parts)

    @property
    def uses_window(self) -> bool:
        """True when the query has at least one ``{{.window}}``."""
        return len(self.parts) > 1


def compile_query(text: str) -> QueryTemplate:
    """Split a query at ``{{.window}}``; any other template action is an error.

    Trim markers behave as in Go (``{{- .window -}}`` eats the whitespace around it).
    """
    parts: list[str] = []
    position, trim_next = 0, False
    for match in _WINDOW_ACTION.finditer(text):
        literal = text[position : match.start()]
        if trim_next:
            literal = literal.lstrip(" \t\r\n")
        if match.group(1):
            literal = literal.rstrip(" \t\r\n")
        parts.append(literal)
        trim_next, position = bool(match.group(2)), match.end()
    tail = text[position:]
    parts.append(tail.lstrip(" \t\r\n") if trim_next else tail)
    if any("{{" in part for part in parts):
        raise ValueError("only {{.window}} can be templated in a query (Go template syntax)")
    return QueryTemplate(tuple(parts))


@dataclass(frozen=True, slots=True)
class AlertMeta:
    """Name, labels and annotations of one generated alert (page or ticket)."""

    name: str
    labels: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True, slots=True)
class ResolvedSLO:
    """Everything the rule generator needs about one SLO."""

    id: str
    name: str
    service: str
    description: str
    objective: float
    labels: dict[str, str]
    error_query: QueryTemplate | None
    total_query: QueryTemplate | None
    ratio_query: QueryTemplate | None
    page: AlertMeta | None
    ticket: AlertMeta | None
    windows: AlertWindows
    spec_version: str
    mode: str
    plugins: PluginEffects
    source: str
    kubernetes: KubernetesMeta | None = None


def _alert(alerting_name: str, shared: SLO, alert: Alert) -> AlertMeta | None:
    if alert.disable:
        return None
    return AlertMeta(
        name=alerting_name,
        labels={**shared.alerting.labels, **alert.labels},
        annotations={**shared.alerting.annotations, **alert.annotations},
    )


def _windows(
    spec: SpecDocument, catalog: WindowsCatalog, default_period: str, errors: list[SpecError]
) -> AlertWindows | None:
    period = spec.period or default_period
    try:
        return resolve_period(catalog, period)
    except ValueError as error:
        if spec.period is None:
            errors.append(SpecError(spec.document.source, str(error)))
        else:
            errors.append(spec.error(spec.period_location, str(error)))
        return None


def collect_resolved(
    specs: Sequence[SpecDocument],
    *,
    catalog: WindowsCatalog,
    default_period: str,
    extra_labels: Mapping[str, str],
) -> tuple[list[ResolvedSLO], list[SpecError]]:
    """Resolve what can be resolved: the SLOs without problems, and every problem."""
    errors: list[SpecError] = []
    resolved: list[ResolvedSLO] = []
    seen: dict[str, tuple[int, str]] = {}
    for spec in specs:
        windows = _windows(spec, catalog, default_period, errors)
        level = spec.service_level
        plugins_location = ("spec", "sloPlugins") if spec.kubernetes else ("slo_plugins",)
        for index, slo in enumerate(level.slos):
            count = len(errors)
            slo_id = f"{level.service}-{slo.name}"
            # Same name twice in one document is reported by validation already.
            if slo_id in seen and seen[slo_id][0] != id(spec):
                errors.append(
                    spec.slo_error(
                        index, ("name",), f'SLO id "{slo_id}" is also defined at {seen[slo_id][1]}'
                    )
                )
            seen.setdefault(slo_id, (id(spec), spec.where(index)))
            queries: dict[str, QueryTemplate] = {}
            sli_fields = {
                ("events", "error_query"): slo.sli.events and slo.sli.events.error_query,
                ("events", "total_query"): slo.sli.events and slo.sli.events.total_query,
                ("raw", "error_ratio_query"): slo.sli.raw and slo.sli.raw.error_ratio_query,
            }
            for (kind, name), text in sli_fields.items():
                if not text:
                    continue
                try:
                    queries[name] = compile_query(text)
                except ValueError as error:
                    errors.append(spec.slo_error(index, ("sli", kind, name), str(error)))
            effects, plugin_errors = apply_plugins(level.slo_plugins, slo, plugins_location)
            for in_slo, location, message in plugin_errors:
                errors.append(
                    spec.slo_error(index, location, message)
                    if in_slo
                    else spec.error(location, message)
                )
            if windows is None or len(errors) > count:
                continue
            resolved.append(
                ResolvedSLO(
                    id=slo_id,
                    name=slo.name,
                    service=level.service,
                    description=slo.description,
                    objective=slo.objective,
                    labels={**level.labels, **slo.labels, **extra_labels},
                    error_query=queries.get("error_query"),
                    total_query=queries.get("total_query"),
                    ratio_query=queries.get("error_ratio_query"),
                    page=_alert(slo.alerting.name, slo, slo.alerting.page_alert),
                    ticket=_alert(slo.alerting.name, slo, slo.alerting.ticket_alert),
                    windows=windows,
                    spec_version=spec.spec_version,
                    mode=spec.mode,
                    plugins=effects,
                    source=spec.document.source,
                    kubernetes=spec.kubernetes,
                )
            )
    # A service-level problem is found once per SLO of the service: report it once.
    return resolved, list(dict.fromkeys(errors))
