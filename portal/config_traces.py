"""The portal's trace store settings: how the embedded OTLP receiver takes and keeps traces.

A part of :class:`portal.config.Settings` (``PORTAL_`` prefix), kept apart with the
validators of its retention.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings


class TraceSettings(BaseSettings):
    """What the embedded trace receiver accepts and how long its store keeps a trace."""

    trace_retention: timedelta = Field(
        default=timedelta(days=3),
        description="How long the embedded trace store keeps a trace (from its start): an ISO "
        "8601 duration (P3D), seconds, or a number of hours with an h (72h); pruned in the "
        "background.",
    )
    trace_max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        gt=0,
        description="Largest OTLP request body /v1/traces reads, both as sent and decompressed "
        "(413 above).",
    )
    trace_max_spans: int = Field(
        default=10_000, gt=0, description="Most spans one OTLP request may carry (400 above)."
    )
    trace_max_attribute_bytes: int = Field(
        default=4096,
        ge=64,
        description="Longest stored attribute value (UTF-8 bytes); longer ones are truncated, "
        "marked with a trailing '…[truncated]', and the exporter told in partial_success: "
        "one oversized value (an SQL statement, a prompt) must not cost the whole batch.",
    )
    trace_ingest_processes: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Worker processes that decode and store OTLP exports, so ingestion uses "
        "more than the portal's one core; 0: in the request threads.",
    )

    @field_validator("trace_retention", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        """Accept ``72h`` (hours) besides pydantic's ISO 8601 durations and seconds."""
        if isinstance(value, str) and value.strip().lower().endswith("h"):
            return timedelta(hours=float(value.strip()[:-1]))
        return value

    @field_validator("trace_retention")
    @classmethod
    def _positive_retention(cls, value: timedelta) -> timedelta:
        """Refuse a retention of zero or less (every trace would be pruned as it arrives)."""
        if value <= timedelta(0):
            raise ValueError("the trace retention must be positive")
        return value
