"""Sloth's two data-only contrib SLO plugins, applied natively.

Sloth plugins are Go code; of the contrib ones only two are pure configuration, and both
appear in Sloth's examples: ``info_labels`` (extra labels on the ``sloth_slo_info``
metric) and ``rule_intervals`` (evaluation ``interval`` of the rule groups). Any other
plugin id is an error, so a spec never silently loses what a plugin would have done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.slo.compiler.errors import Location, friendly_message
from portal.slo.compiler.promql import METRIC_NAME, parse_duration
from portal.slo.compiler.spec import SLO, PluginRef, Plugins, label_name_problems

INFO_LABELS = "sloth.dev/contrib/info_labels/v1"
RULE_INTERVALS = "sloth.dev/contrib/rule_intervals/v1"
INFO_METRIC = "sloth_slo_info"


def _interval(value: str | None) -> str | None:
    if value is not None and parse_duration(value) <= 0:
        raise ValueError(f"{value!r} must be longer than 0")
    return value


class InfoLabelsConfig(BaseModel):
    """``labels`` to add to the info metric (``metricName``, default ``sloth_slo_info``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    labels: Annotated[dict[str, str], Field(min_length=1)]
    metricName: str = INFO_METRIC  # noqa: N815 (Sloth's field name)

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        problems = label_name_problems(list(value))
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("metricName")
    @classmethod
    def _metric(cls, value: str) -> str:
        if not METRIC_NAME.match(value):
            raise ValueError(f'"{value}" is not a valid metric name')
        return value


class Intervals(BaseModel):
    """Evaluation intervals: ``default`` and optional per rule kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str
    sliError: str | None = None  # noqa: N815
    metadata: str | None = None
    alert: str | None = None

    _durations = field_validator("default", "sliError", "metadata", "alert")(_interval)


class RuleIntervalsConfig(BaseModel):
    """The ``rule_intervals`` plugin's config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Intervals


@dataclass
class PluginEffects:
    """What the plugins of one SLO change in its rules."""

    info_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # metric -> labels
    sli_interval: str | None = None
    meta_interval: str | None = None
    alert_interval: str | None = None


def apply_plugins(
    service_plugins: Plugins | None,
    slo: SLO,
    service_location: Location,
) -> tuple[PluginEffects, list[tuple[bool, Location, str]]]:
    """Run the SLO's plugin chain (the service's first, unless ``overridePrevious``).

    Errors are ``(in_slo, location, message)``: locations inside the SLO are relative to
    it (``plugins.chain[0].id``), the others start at ``service_location``.
    """
    chain: list[tuple[PluginRef, bool, Location]] = []
    if service_plugins is not None and not (slo.plugins and slo.plugins.override_previous):
        chain += [
            (ref, False, (*service_location, "chain", index))
            for index, ref in enumerate(service_plugins.chain)
        ]
    if slo.plugins is not None:
        chain += [
            (ref, True, ("plugins", "chain", index)) for index, ref in enumerate(slo.plugins.chain)
        ]
    chain.sort(key=lambda item: item[0].priority)
    effects = PluginEffects()
    errors: list[tuple[bool, Location, str]] = []
    for ref, in_slo, location in chain:
        try:
            if ref.id == INFO_LABELS:
                info = InfoLabelsConfig.model_validate(ref.config)
                effects.info_labels.setdefault(info.metricName, {}).update(info.labels)
            elif ref.id == RULE_INTERVALS:
                intervals = RuleIntervalsConfig.model_validate(ref.config).interval
                effects.sli_interval = intervals.sliError or intervals.default
                effects.meta_interval = intervals.metadata or intervals.default
                effects.alert_interval = intervals.alert or intervals.default
            else:
                errors.append(
                    (
                        in_slo,
                        (*location, "id"),
                        f'unsupported SLO plugin "{ref.id}": Sloth plugins are Go code; only '
                        f"{INFO_LABELS} and {RULE_INTERVALS} are applied",
                    )
                )
        except ValidationError as error:
            errors.extend(
                (
                    in_slo,
                    (*location, "config", *item["loc"]),
                    friendly_message(item["type"], item["msg"]),
                )
                for item in error.errors()
            )
    return effects, errors
