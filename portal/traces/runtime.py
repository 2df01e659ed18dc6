"""Which trace source the Traces pages read: Grafana Tempo when configured, else the portal's store.

``PORTAL_TEMPO_URL`` set: :class:`~portal.integrations.tempo.TempoTraceSource`; unset: the
embedded store that the portal's own OTLP receiver fills. The pages only see the
:class:`~portal.integrations.trace_source.TraceSource` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine

from portal.config import Settings
from portal.deps import from_app_state
from portal.integrations.tempo import TempoTraceSource
from portal.integrations.trace_source import TraceSource
from portal.traces.source import EmbeddedTraceSource


@dataclass
class TracesRuntime:
    """The trace source of one app (tests swap in a fake)."""

    source: TraceSource


def runtime_from_settings(settings: Settings, engine: Engine) -> TracesRuntime:
    """Return the runtime for ``settings``: Tempo when ``tempo_url`` is set, else embedded."""
    if settings.tempo_url:
        tempo = TempoTraceSource(settings.tempo_url, settings.tempo_timeout_seconds)
        return TracesRuntime(tempo)
    return TracesRuntime(EmbeddedTraceSource(engine))


traces_runtime = from_app_state("traces", TracesRuntime)
TracesDep = Annotated[TracesRuntime, Depends(traces_runtime)]
