"""One OTLP export, decoded, authorised and stored: the receiver's work, in any process.

The receiver (:mod:`portal.traces.ingest_routes`) reads the body and decides who sends;
this module does the rest, either in the request's thread or in a worker process of
:mod:`portal.traces.ingest_pool`. Everything here is picklable: the export travels to a
worker as bytes and comes back as the answer's bytes or an :class:`Outcome` refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from portal.traces import otlp
from portal.traces.otlp import OtlpError
from portal.traces.store import write_spans


@dataclass(frozen=True)
class Limits:
    """The receiver's limits (``PORTAL_TRACE_MAX_*``)."""

    body_bytes: int
    spans: int
    attribute_bytes: int


@dataclass(frozen=True)
class Sender:
    """Whose spans an export may carry: any service's (``services`` None) or a token's."""

    services: frozenset[str] | None
    token: str = ""  # "API token <id> (<name>)", for the refusal


@dataclass(frozen=True)
class Export:
    """One export as received: the body with its encodings."""

    body: bytes
    content_encoding: str
    kind: str  # otlp.PROTOBUF or otlp.JSON


@dataclass(frozen=True)
class Outcome:
    """The answer: ``status`` 200 with the response body, or a refusal with its message."""

    status: int
    body: bytes = b""
    message: str = ""


def check_services(sender: Sender, services: set[str]) -> None:
    """Refuse (403) spans of services the sender may not write."""
    if sender.services is None:
        return
    if foreign := sorted(services - sender.services):
        raise OtlpError(
            403,
            f"{sender.token} may not send spans of {', '.join(foreign)} (service.name); "
            f"it holds {', '.join(sorted(sender.services))}",
        )


def ingest(engine: Engine, limits: Limits, sender: Sender, export: Export) -> Outcome:
    """Decode ``export``, check its services against ``sender`` and store it in one transaction.

    Never raises for the export's content: a malformed or refused one is an Outcome with
    the OTLP status; nothing is stored then.
    """
    try:
        data = otlp.decompress(export.body, export.content_encoding, limits.body_bytes)
        decoded = otlp.decode(otlp.parse(data, export.kind), limits.spans, limits.attribute_bytes)
        check_services(sender, decoded.services)
        try:
            write_spans(engine, decoded.spans, decoded.attributes)
        except SQLAlchemyError as exc:
            raise OtlpError(
                503, f"the portal's database did not store the spans: {exc.code}"
            ) from exc
    except OtlpError as exc:
        return Outcome(exc.status, message=exc.message)
    return Outcome(200, otlp.success(export.kind, decoded))
