"""Layered layout of a small entity graph whose edges never cross a box.

The entity the page is about sits in the leftmost layer; every other box sits in the
layer of its distance from it (breadth-first over the relations, whatever their
direction). Breadth-first distances of two related entities differ by at most one, so
every edge joins two neighbouring layers or stays inside one. Each edge is drawn as
three straight pieces: out of the side of its source box that faces the gap it uses, along
a vertical channel of its own inside that gap, and into the facing side of its target
box. Gaps between layers hold no boxes, so no edge passes through one; an edge between
two boxes of the same layer uses the gap to the right of that layer, out of and into the
right sides.

Two further rules keep edges apart, so that no line seems to join boxes it does not:
every edge has its own vertical channel, and ports on right sides lie on ``y ≡ 2 (mod
4)`` while ports on left sides lie on ``y ≡ 0 (mod 4)``, with every box top on a multiple
of 4. A horizontal piece therefore shares its line only with pieces of the same box.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

NODE_WIDTH, NODE_HEIGHT = 190, 36
ROW_PITCH = 48  # box height plus the space between rows; a multiple of 4 (see the port rule)
MARGIN = 12  # a multiple of 4 as well
CHANNEL_SPACING = 8
CHANNEL_MARGIN = 16  # room for the arrowhead between the last bend and the target box
MIN_GAP = 56
_SLOTS = 7  # ports per box side before edges of one box start sharing a port
KIND_ORDER = {"domain": 0, "system": 1, "component": 2, "api": 3, "resource": 4}

Point = tuple[int, int]


@dataclass(eq=False)
class Node:
    """A box in the graph: an entity, where the layout put it, and whether the page shows it."""

    ref: str
    label: str
    kind: str
    url: str
    x: int = 0
    y: int = 0
    current: bool = False
    layer: int = 0


@dataclass(eq=False)
class Edge:
    """A relation drawn from ``source`` to ``target`` along ``points`` (set by the layout)."""

    source: Node
    target: Node
    type: str
    points: list[Point] = field(default_factory=list)

    @property
    def path(self) -> str:
        """Return the SVG path data of the edge: straight pieces through its points."""
        if not self.points:
            return ""
        (x, y), *rest = self.points
        return f"M {x} {y}" + "".join(f" L {px} {py}" for px, py in rest)


@dataclass
class Layout:
    """The size of the drawing once every node and edge has its place."""

    width: int
    height: int


def _sort_key(node: Node) -> tuple[int, str, str]:
    return (KIND_ORDER.get(node.kind, len(KIND_ORDER)), node.label.casefold(), node.ref)


def _layers(nodes: Sequence[Node], edges: Sequence[Edge], root: Node | None) -> list[list[Node]]:
    """Assign each node its breadth-first distance from ``root``; unreachable parts start anew."""
    neighbours = _neighbours(edges)
    starts = sorted(nodes, key=_sort_key)
    if root is not None:
        starts.insert(0, root)
    seen: set[int] = set()
    for start in starts:
        if id(start) in seen:
            continue
        seen.add(id(start))
        start.layer = 0
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for other in sorted(neighbours[id(node)], key=_sort_key):
                if id(other) not in seen:
                    seen.add(id(other))
                    other.layer = node.layer + 1
                    queue.append(other)
    layers: list[list[Node]] = [[] for _ in range(max((n.layer for n in nodes), default=-1) + 1)]
    for node in nodes:
        layers[node.layer].append(node)
    return layers


def _neighbours(edges: Sequence[Edge]) -> dict[int, list[Node]]:
    """Return the nodes related to each node (keyed by ``id``), whatever the direction."""
    neighbours: dict[int, list[Node]] = defaultdict(list)
    for edge in edges:
        neighbours[id(edge.source)].append(edge.target)
        neighbours[id(edge.target)].append(edge.source)
    return neighbours


def _order(layers: list[list[Node]], edges: Sequence[Edge], root: Node | None) -> None:
    """Order each layer by the mean row of its neighbours in the layer before (fewer crossings)."""
    neighbours = _neighbours(edges)
    row: dict[int, int] = {}

    def barycentre(node: Node) -> float:
        rows = [row[id(n)] for n in neighbours[id(node)] if n.layer == node.layer - 1]
        return sum(rows) / len(rows) if rows else float(len(row))

    for index, layer in enumerate(layers):
        if index == 0:
            layer.sort(key=lambda node: (node is not root, *_sort_key(node)))
        else:
            layer.sort(key=lambda node: (barycentre(node), *_sort_key(node)))
        for position, node in enumerate(layer):
            row[id(node)] = position


@dataclass
class _Route:
    """Where one edge leaves, which gap it crosses and where it arrives."""

    edge: Edge
    gap: int
    source_side: str  # "left" or "right"
    target_side: str
    source_y: int = 0
    target_y: int = 0


def _route(edge: Edge) -> _Route:
    source, target = edge.source.layer, edge.target.layer
    if source < target:
        return _Route(edge, source, "right", "left")
    if source > target:
        return _Route(edge, target, "left", "right")
    return _Route(edge, source, "right", "right")


def _port_offset(side: str, slot: int) -> int:
    """Return a port's distance from the box top: ``≡ 2 (mod 4)`` on the right, 0 on the left."""
    return 4 * slot + (2 if side == "right" else 0)


def _assign_ports(routes: list[_Route]) -> None:
    """Spread the edges at each side of a box over its ports, ordered by where they go."""
    at_side: dict[tuple[int, str], list[tuple[_Route, bool]]] = defaultdict(list)
    for route in routes:
        at_side[(id(route.edge.source), route.source_side)].append((route, True))
        at_side[(id(route.edge.target), route.target_side)].append((route, False))
    for (_, side), ends in at_side.items():

        def other_end(end: tuple[_Route, bool]) -> tuple[int, int]:
            route, is_source = end
            other = route.edge.target if is_source else route.edge.source
            return (other.y, other.x)

        ends.sort(key=other_end)
        count = len(ends)
        for index, (route, is_source) in enumerate(ends):
            if count <= _SLOTS:
                slot = ((index + 1) * (_SLOTS + 1)) // (count + 1)
            else:  # more edges than ports: neighbours share a port of the same box
                slot = 1 + (index * _SLOTS) // count
            node = route.edge.source if is_source else route.edge.target
            y = node.y + _port_offset(side, slot)
            if is_source:
                route.source_y = y
            else:
                route.target_y = y


def lay_out(nodes: Sequence[Node], edges: Sequence[Edge], root: Node | None = None) -> Layout:
    """Place ``nodes`` and route ``edges`` (none from a node to itself); return the size.

    ``root`` (the entity the page shows) goes first in the leftmost layer.
    """
    if any(edge.source is edge.target for edge in edges):
        raise ValueError("an edge from a node to itself cannot be laid out")
    layers = _layers(nodes, edges, root)
    _order(layers, edges, root)
    routes = [_route(edge) for edge in edges]
    by_gap: dict[int, list[_Route]] = defaultdict(list)
    for route in routes:
        by_gap[route.gap].append(route)
    gap_width = {
        gap: max(MIN_GAP, 2 * CHANNEL_MARGIN + (len(in_gap) - 1) * CHANNEL_SPACING)
        for gap, in_gap in by_gap.items()
    }
    tallest = max((len(layer) for layer in layers), default=0)
    x = MARGIN
    for index, layer in enumerate(layers):
        # Shorter layers are centred; half a pitch is 24, so box tops stay multiples of 4.
        top = MARGIN + (tallest - len(layer)) * (ROW_PITCH // 2)
        for position, node in enumerate(layer):
            node.x, node.y = x, top + position * ROW_PITCH
        x += NODE_WIDTH
        if index in by_gap or index < len(layers) - 1:
            x += gap_width.get(index, MIN_GAP)  # the last gap only holds edges inside its layer
    width = x + MARGIN if layers else 0
    _assign_ports(routes)
    for gap, in_gap in by_gap.items():
        in_gap.sort(key=lambda r: (min(r.source_y, r.target_y), max(r.source_y, r.target_y)))
        gap_left = layers[gap][0].x + NODE_WIDTH
        for channel, route in enumerate(in_gap):
            channel_x = gap_left + CHANNEL_MARGIN + channel * CHANNEL_SPACING
            source, target = route.edge.source, route.edge.target
            source_x = source.x + (NODE_WIDTH if route.source_side == "right" else 0)
            target_x = target.x + (NODE_WIDTH if route.target_side == "right" else 0)
            route.edge.points = [
                (source_x, route.source_y),
                (channel_x, route.source_y),
                (channel_x, route.target_y),
                (target_x, route.target_y),
            ]
    height = 2 * MARGIN + tallest * ROW_PITCH - (ROW_PITCH - NODE_HEIGHT) if tallest else 0
    return Layout(width=width, height=height)
