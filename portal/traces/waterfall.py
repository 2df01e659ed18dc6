"""The waterfall of one trace: its spans as a tree with offsets, colours and the critical path.

The page draws rows in tree order (a parent, then its children by start time), each bar
placed by its offset and width as percentages of the trace's duration. Spans are data
from outside (a service exports them), so the tree is built without recursion and
survives what a buggy exporter sends: a parent that never arrived (the span becomes a
root), a loop of parents (broken where it is found), a child outliving its parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.integrations.trace_source import Span, SpanEvent, Trace

PALETTE_SIZE = 10  # traces.css defines .svc-0 .. .svc-9
AXIS_TICKS = 5
# What a GenAI span (OpenTelemetry's gen_ai semantic conventions) shows beside its name.
GENAI_FACTS = (
    ("gen_ai.request.model", "model"),
    ("gen_ai.usage.input_tokens", "input tokens"),
    ("gen_ai.usage.output_tokens", "output tokens"),
)


@dataclass(frozen=True)
class ServiceColour:
    """A service of the trace, the colour class of its bars and its catalog link."""

    name: str
    colour: int
    span_count: int

    @property
    def catalog_url(self) -> str:
        """The catalog page of the Component named like the service (``service.name``)."""
        return f"/catalog/component/default/{self.name}"


@dataclass(frozen=True)
class Row:
    """One span as the waterfall draws it."""

    span: Span
    depth: int
    parent_id: str | None  # None for a root (or a span whose parent never arrived)
    offset_pct: float
    width_pct: float
    colour: int
    child_count: int
    critical: bool
    offset_ms: float
    genai: tuple[tuple[str, str], ...]  # (label, value) of the gen_ai.* facts it carries
    exceptions: tuple[SpanEvent, ...]
    orphan: bool  # it names a parent the trace does not hold

    @property
    def error(self) -> bool:
        """Whether the span's status is ERROR."""
        return self.span.status == "ERROR"


@dataclass(frozen=True)
class Tick:
    """A label of the time axis."""

    offset_pct: float
    label: str


@dataclass(frozen=True)
class Waterfall:
    """The whole trace, ready to draw."""

    trace_id: str
    start: datetime
    duration_ms: float
    rows: list[Row]
    services: list[ServiceColour]
    ticks: list[Tick]
    error_count: int


def format_ms(value: float) -> str:
    """Return a duration for people: ``850 µs``, ``12.3 ms``, ``1.25 s``."""
    if value < 1:
        return f"{value * 1000:.0f} µs"
    if value < 1000:
        return f"{value:.3g} ms" if value < 100 else f"{value:.0f} ms"
    return f"{value / 1000:.3g} s"


def _children(spans: Sequence[Span]) -> tuple[list[Span], dict[str, list[Span]], set[str]]:
    """Return the roots, the children of each span id (by start) and the orphans' ids."""
    known = {span.span_id for span in spans}
    roots: list[Span] = []
    children: dict[str, list[Span]] = {}
    orphans: set[str] = set()
    for span in spans:
        parent = span.parent_span_id
        if parent and parent in known and parent != span.span_id:
            children.setdefault(parent, []).append(span)
        else:
            if parent and parent != span.span_id:
                orphans.add(span.span_id)
            roots.append(span)
    for group in children.values():
        group.sort(key=lambda span: (span.start, span.span_id))
    roots.sort(key=lambda span: (span.start, span.span_id))
    return roots, children, orphans


def _tree_order(
    spans: Sequence[Span], roots: list[Span], children: Mapping[str, list[Span]]
) -> list[tuple[Span, int, str | None]]:
    """Return (span, depth, parent id) depth first; spans in a parent loop join as roots."""
    ordered: list[tuple[Span, int, str | None]] = []
    seen: set[str] = set()
    pending = list(roots)
    leftovers = iter(sorted(spans, key=lambda span: (span.start, span.span_id)))
    while True:
        stack: list[tuple[Span, int, str | None]] = [(root, 0, None) for root in reversed(pending)]
        while stack:
            span, depth, parent = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            ordered.append((span, depth, parent))
            for child in reversed(children.get(span.span_id, [])):
                stack.append((child, depth + 1, span.span_id))
        # Spans reachable from no root sit in a loop of parents: start again from one.
        pending = [span for span in leftovers if span.span_id not in seen][:1]
        if not pending:
            return ordered


def critical_path(roots: Iterable[Span], children: Mapping[str, list[Span]]) -> set[str]:
    """Return the ids of the spans on the critical path: what the trace's end waited for.

    From each span, walk back from its end: the child finishing last (clamped to the
    parent's end) is on the path, then the child finishing last before that one started,
    and so on; the same rule applies inside each chosen child.
    """
    roots = list(roots)
    if not roots:
        return set()
    # The longest root is the request people look at; other roots are background work.
    stack = [max(roots, key=lambda span: (span.end - span.start, span.span_id))]
    path: set[str] = set()
    while stack:
        span = stack.pop()
        if span.span_id in path:
            continue
        path.add(span.span_id)
        cursor = span.end
        for child in sorted(
            children.get(span.span_id, []), key=lambda c: min(c.end, span.end), reverse=True
        ):
            if min(child.end, span.end) <= cursor and child.start < cursor:
                stack.append(child)
                cursor = child.start
    return path


def genai_facts(attributes: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """Return the GenAI model and token counts a span carries, labelled."""
    return tuple((label, str(attributes[key])) for key, label in GENAI_FACTS if key in attributes)


def _ticks(duration_ms: float) -> list[Tick]:
    return [
        Tick(100 * step / AXIS_TICKS, format_ms(duration_ms * step / AXIS_TICKS))
        for step in range(AXIS_TICKS + 1)
    ]


def build_waterfall(trace: Trace) -> Waterfall | None:
    """Return the waterfall of ``trace``; None when it holds no span."""
    spans = list(trace.spans)
    if not spans:
        return None
    start = min(span.start for span in spans)
    end = max(max(span.end, span.start) for span in spans)
    total_ms = (end - start).total_seconds() * 1000
    scale = 100 / total_ms if total_ms > 0 else 0.0
    roots, children, orphans = _children(spans)
    path = critical_path(roots, children)

    counts: dict[str, int] = {}
    for span in spans:
        counts[span.service] = counts.get(span.service, 0) + 1
    # Colours by first appearance in start order: the root's service is always colour 0.
    by_start = sorted(spans, key=lambda span: (span.start, span.span_id))
    colours: dict[str, int] = {}
    for span in by_start:
        colours.setdefault(span.service, len(colours) % PALETTE_SIZE)
    services = [ServiceColour(name, colours[name], counts[name]) for name in colours]

    rows: list[Row] = []
    for span, depth, parent in _tree_order(spans, roots, children):
        offset_ms = (span.start - start).total_seconds() * 1000
        width = max(span.duration_ms, 0.0) * scale
        rows.append(
            Row(
                span=span,
                depth=depth,
                parent_id=parent,
                offset_pct=round(offset_ms * scale, 3),
                width_pct=round(max(width, 0.2), 3),  # a zero-length span still shows
                colour=colours[span.service],
                child_count=len(children.get(span.span_id, [])),
                critical=span.span_id in path,
                offset_ms=offset_ms,
                genai=genai_facts(span.attributes),
                exceptions=tuple(event for event in span.events if event.name == "exception"),
                orphan=span.span_id in orphans,
            )
        )
    errors = sum(1 for span in spans if span.status == "ERROR")
    return Waterfall(trace.trace_id, start, total_ms, rows, services, _ticks(total_ms), errors)
