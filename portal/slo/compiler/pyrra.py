"""Pyrra ``ServiceLevelObjective`` resources (pyrra.dev/v1alpha1) translated into the Sloth model.

Indicators: ``ratio`` (errors over total, both counters), ``latency`` (total minus the
``le`` bucket, over total), ``latencyNative`` (the share above ``latency`` in a native
histogram, ``histogram_fraction`` as in Pyrra) and ``bool_gauge`` (samples at 0 over all
samples), each with its optional ``grouping``. The service is the object's namespace (else
its name), the SLO its name, the period its ``window`` (any period: 30d and 28d/4w use
Sloth's windows, others Pyrra's scaled ones, see ``scaled_windows``). Labels prefixed
``pyrra.dev/`` become SLO labels, as Pyrra propagates them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.slo.compiler.documents import Translation
from portal.slo.compiler.errors import Document
from portal.slo.compiler.promql import go_float, parse_duration

PYRRA_API_VERSION = "pyrra.dev/v1alpha1"
MODE_PYRRA = "cli-gen-pyrra"
DEFAULT_ALERT_NAME = "ErrorBudgetBurn"  # Pyrra's own default
LABEL_PREFIX = "pyrra.dev/"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metric(_Strict):
    """A series selector, e.g. ``http_requests_total{job="api",code=~"5.."}``."""

    metric: Annotated[str, Field(min_length=1)]


class Ratio(_Strict):
    """Errors over total, both counters."""

    errors: Metric
    total: Metric
    grouping: list[str] = []


class Latency(_Strict):
    """Requests faster than a bucket's ``le`` (``success``) over all requests (``total``)."""

    success: Metric
    total: Metric
    grouping: list[str] = []


class BoolGauge(_Strict):
    """A 0/1 gauge: the share of samples at 0 is the error ratio."""

    metric: Annotated[str, Field(min_length=1)]
    grouping: list[str] = []


class LatencyNative(_Strict):
    """Requests faster than ``latency`` in a native histogram (``total``)."""

    latency: str
    total: Metric
    grouping: list[str] = []

    @field_validator("latency")
    @classmethod
    def _latency(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"{value!r} must be longer than 0")
        return value


class Indicator(_Strict):
    """Exactly one of ``ratio``, ``latency``, ``latencyNative`` and ``bool_gauge``."""

    ratio: Ratio | None = None
    latency: Latency | None = None
    bool_gauge: BoolGauge | None = None
    latencyNative: LatencyNative | None = None  # noqa: N815 (Pyrra's field name)


class Alerting(_Strict):
    """Pyrra's alerting switches; ``name`` is the alert name."""

    disabled: bool = False
    name: str | None = None
    burnrates: bool | None = None
    absent: bool | None = None


class Spec(_Strict):
    """The SLO: target (percent, Pyrra writes it as a string), window, indicator."""

    target: float
    window: str
    description: str = ""
    indicator: Indicator
    alerting: Alerting = Alerting()

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class Meta(BaseModel):
    """Object metadata (other Kubernetes fields are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    namespace: str | None = None
    labels: dict[str, str] = {}


class ServiceLevelObjective(_Strict):
    """``kind: ServiceLevelObjective``."""

    apiVersion: Literal["pyrra.dev/v1alpha1"]  # noqa: N815
    kind: Literal["ServiceLevelObjective"]
    metadata: Meta
    spec: Spec
    status: Any = None


def _by(grouping: list[str]) -> str:
    return f" by ({', '.join(grouping)})" if grouping else ""


def _sli(indicator: Indicator) -> tuple[dict[str, Any] | None, str]:
    """Return the Sloth SLI and which indicator it came from (or None and a problem)."""
    given = [
        name
        for name in ("ratio", "latency", "bool_gauge", "latencyNative")
        if getattr(indicator, name) is not None
    ]
    if len(given) != 1:
        return None, "exactly one of ratio, latency, latencyNative and bool_gauge is required"
    w = "[{{.window}}]"
    if indicator.ratio is not None:
        by = _by(indicator.ratio.grouping)
        return {
            "events": {
                "error_query": f"sum{by}(rate({indicator.ratio.errors.metric}{w}))",
                "total_query": f"sum{by}(rate({indicator.ratio.total.metric}{w}))",
            }
        }, "ratio"
    if indicator.latency is not None:
        by = _by(indicator.latency.grouping)
        total = f"sum{by}(rate({indicator.latency.total.metric}{w}))"
        success = f"sum{by}(rate({indicator.latency.success.metric}{w}))"
        return {"events": {"error_query": f"(\n{total}\n-\n{success}\n)", "total_query": total}}, (
            "latency"
        )
    if indicator.bool_gauge is not None:
        by = _by(indicator.bool_gauge.grouping)
        metric = indicator.bool_gauge.metric
        total = f"sum{by}(count_over_time({metric}{w}))"
        good = f"sum{by}(sum_over_time({metric}{w}))"
        return {"events": {"error_query": f"(\n{total}\n-\n{good}\n)", "total_query": total}}, (
            "bool_gauge"
        )
    native = indicator.latencyNative
    assert native is not None
    by = _by(native.grouping)
    seconds = go_float(parse_duration(native.latency) / 1000)
    # Pyrra's own expression: the share of requests above the latency in the histogram.
    histogram = f"sum{by}(rate({native.total.metric}{w}))"
    return {"raw": {"error_ratio_query": f"1 - histogram_fraction(0, {seconds}, {histogram})"}}, (
        "latencyNative"
    )


def translate_pyrra(document: Document) -> Translation:
    """Translate one ServiceLevelObjective into a one-SLO Sloth service level."""
    translation = Translation(document, {}, [], PYRRA_API_VERSION, MODE_PYRRA)
    try:
        slo = ServiceLevelObjective.model_validate(document.data)
    except ValidationError as error:
        translation.errors = document.validation_errors(error, slo_prefix=("-",))
        return translation
    translation.period = slo.spec.window
    translation.period_location = ("spec", "window")
    if not 0 < slo.spec.target < 100:
        translation.errors.append(
            document.error(
                ("spec", "target"),
                f"must be above 0 and below 100 (a percentage), got {slo.spec.target:g}",
                slo=slo.metadata.name,
            )
        )
    sli, kind = _sli(slo.spec.indicator)
    if sli is None:
        translation.errors.append(
            document.error(("spec", "indicator"), kind, slo=slo.metadata.name)
        )
    if translation.errors:
        return translation
    # Pyrra's alerts carry an slo label; without it two SLOs of a namespace would have
    # identical alert rules, which promtool rejects as duplicates.
    alerting: dict[str, Any] = {
        "name": slo.spec.alerting.name or DEFAULT_ALERT_NAME,
        "labels": {"slo": slo.metadata.name},
    }
    if slo.spec.alerting.disabled:
        alerting = {"page_alert": {"disable": True}, "ticket_alert": {"disable": True}}
    labels = {
        key[len(LABEL_PREFIX) :]: value
        for key, value in slo.metadata.labels.items()
        if key.startswith(LABEL_PREFIX)
    }
    translation.service_level = {
        "service": slo.metadata.namespace or slo.metadata.name,
        "slos": [
            {
                "name": slo.metadata.name,
                "objective": slo.spec.target,
                "description": slo.spec.description,
                "labels": labels,
                "sli": sli,
                "alerting": alerting,
            }
        ],
    }
    translation.origins = [("spec",)]
    return translation
