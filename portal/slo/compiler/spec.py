"""Sloth's SLO spec (``prometheus/v1`` and the ``PrometheusServiceLevel`` CRD) as strict models.

Unknown fields are errors (Sloth silently ignores them, so a typo such as ``objetive``
disables nothing and checks nothing). Field names are accepted in Sloth's snake_case
(``page_alert``, ``error_query``) and in the CRD's camelCase (``pageAlert``, ``errorQuery``):
the same SLO is written both ways in the wild, and Sloth's own ``validate`` test data uses
``pageAlert`` in a ``prometheus/v1`` file.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from portal.slo.compiler.promql import LABEL_NAME

PROMETHEUS_V1 = "prometheus/v1"
SLOTH_CRD_API_VERSION = "sloth.slok.dev/v1"
SLOTH_CRD_KIND = "PrometheusServiceLevel"

# Labels Sloth writes itself: a spec that sets one would break the rules' own matching.
RESERVED_LABELS = frozenset(
    {
        "sloth_id",
        "sloth_service",
        "sloth_slo",
        "sloth_window",
        "sloth_severity",
        "sloth_mode",
        "sloth_spec",
        "sloth_version",
        "sloth_objective",
    }
)
LABEL_RULE = "Prometheus label names match [a-zA-Z_][a-zA-Z0-9_]*"


def _alias(snake: str, camel: str, **kwargs: Any) -> Any:
    return Field(validation_alias=AliasChoices(snake, camel), **kwargs)


def label_name_problems(names: list[str], *, reserved: bool = True) -> list[str]:
    """Describe the invalid names among ``names`` (empty when all are fine)."""
    invalid = [name for name in names if not LABEL_NAME.match(name)]
    problems = []
    if invalid:
        listed = ", ".join(f'"{name}"' for name in invalid)
        problems.append(f"invalid label name {listed} ({LABEL_RULE})")
    taken = sorted(name for name in names if reserved and name in RESERVED_LABELS)
    if taken:
        problems.append(f"label {', '.join(taken)} is set by the generator and cannot be set")
    return problems


def _check_labels(value: dict[str, str], *, kind: str = "label") -> dict[str, str]:
    problems = label_name_problems(list(value))
    empty = sorted(name for name, text in value.items() if text == "")
    if empty:
        problems.append(f"{kind} {', '.join(empty)} has an empty value")
    if problems:
        raise ValueError("; ".join(problems))
    return value


def _check_annotations(value: dict[str, str]) -> dict[str, str]:
    problems = label_name_problems(list(value), reserved=False)
    if problems:
        raise ValueError("; ".join(p.replace("label name", "annotation name") for p in problems))
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Alert(_Strict):
    """Settings of the page or the ticket alert."""

    disable: bool = False
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}

    _labels = field_validator("labels")(_check_labels)
    _annotations = field_validator("annotations")(_check_annotations)


class Alerting(_Strict):
    """Alert name, shared labels and annotations, and the page and ticket alerts."""

    name: str = ""
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    page_alert: Alert = Field(
        default_factory=Alert, validation_alias=AliasChoices("page_alert", "pageAlert")
    )
    ticket_alert: Alert = Field(
        default_factory=Alert, validation_alias=AliasChoices("ticket_alert", "ticketAlert")
    )

    _labels = field_validator("labels")(_check_labels)
    _annotations = field_validator("annotations")(_check_annotations)


class SLIEvents(_Strict):
    """Bad events over total events, each a query with ``{{.window}}`` in its ranges."""

    error_query: Annotated[str, Field(min_length=1)] = _alias("error_query", "errorQuery")
    total_query: Annotated[str, Field(min_length=1)] = _alias("total_query", "totalQuery")


class SLIRaw(_Strict):
    """A query that already returns the error ratio (0-1) for ``{{.window}}``."""

    error_ratio_query: Annotated[str, Field(min_length=1)] = _alias(
        "error_ratio_query", "errorRatioQuery"
    )


class SLIPlugin(_Strict):
    """Sloth's SLI plugins: Go code loaded by Sloth, recognised here only to reject clearly."""

    id: str
    options: dict[str, Any] = {}


class SLI(_Strict):
    """Exactly one of ``events`` and ``raw``."""

    events: SLIEvents | None = None
    raw: SLIRaw | None = None
    plugin: SLIPlugin | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SLI:
        if self.plugin is not None:
            raise ValueError(
                "SLI plugins are Go code run by Sloth and are not supported: write the "
                "query the plugin produces as sli.raw.error_ratio_query"
            )
        given = [name for name in ("events", "raw") if getattr(self, name) is not None]
        if not given:
            raise ValueError("one of events (error_query and total_query) or raw is required")
        if len(given) > 1:
            raise ValueError("only one of events and raw may be set")
        return self


class PluginRef(_Strict):
    """One SLO plugin of a chain (only Sloth's data-only contrib plugins are understood)."""

    id: str
    priority: int = 0
    config: dict[str, Any] = {}


class Plugins(_Strict):
    """An SLO plugin chain; ``overridePrevious`` drops the service-level chain."""

    override_previous: bool = _alias("override_previous", "overridePrevious", default=False)
    chain: list[PluginRef] = []


class SLO(_Strict):
    """One service level objective."""

    name: Annotated[str, Field(min_length=1)]
    objective: float
    description: str = ""
    labels: dict[str, str] = {}
    sli: SLI
    alerting: Alerting = Field(default_factory=Alerting)
    plugins: Plugins | None = None

    _labels = field_validator("labels")(_check_labels)

    @field_validator("objective", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number (a percentage such as 99.9)")
        return value

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: float) -> float:
        # 100 leaves no error budget (every burn rate divides by zero); 0 allows everything.
        if not (math.isfinite(value) and 0 < value < 100):
            raise ValueError(f"must be above 0 and below 100 (a percentage), got {value:g}")
        return value


class ServiceLevel(_Strict):
    """The service, its labels and SLOs: the body shared by ``prometheus/v1`` and the CRD."""

    service: Annotated[str, Field(min_length=1)]
    labels: dict[str, str] = {}
    slos: Annotated[list[SLO], Field(min_length=1)]
    slo_plugins: Plugins | None = Field(
        default=None, validation_alias=AliasChoices("slo_plugins", "sloPlugins")
    )

    _labels = field_validator("labels")(_check_labels)

    def semantic_errors(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Errors between fields: duplicate SLO names, a missing alert name (with locations)."""
        errors: list[tuple[tuple[str | int, ...], str]] = []
        first: dict[str, int] = {}
        for index, slo in enumerate(self.slos):
            if slo.name in first:
                errors.append(
                    (("slos", index, "name"), f"duplicate SLO name (also slos[{first[slo.name]}])")
                )
            first.setdefault(slo.name, index)
            alerting = slo.alerting
            enabled = not (alerting.page_alert.disable and alerting.ticket_alert.disable)
            if enabled and not alerting.name:
                errors.append(
                    (
                        ("slos", index, "alerting", "name"),
                        "required while the page or ticket alert is enabled "
                        "(set a name, or disable both alerts)",
                    )
                )
        return errors


class PrometheusV1(ServiceLevel):
    """Sloth's file format: ``version: prometheus/v1`` plus the service level."""

    version: str

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != PROMETHEUS_V1:
            raise ValueError(f'unsupported version "{value}": expected "{PROMETHEUS_V1}"')
        return value


class KubernetesMeta(BaseModel):
    """The metadata of a Kubernetes object that is carried over to the PrometheusRule."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class PrometheusServiceLevelCRD(_Strict):
    """Sloth's Kubernetes CRD (``sloth.slok.dev/v1``, kind ``PrometheusServiceLevel``)."""

    api_version: str = _alias("apiVersion", "api_version")
    kind: str
    metadata: KubernetesMeta
    spec: ServiceLevel
    status: Any = None
