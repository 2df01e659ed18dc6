"""A small layered graph of an entity's system, laid out server-side as SVG coordinates."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from portal.catalog.models import Entity, Relation
from portal.catalog.present import entity_url

_COLUMNS = {"domain": 0, "system": 1, "component": 2, "resource": 3, "api": 3}
_EDGE_TYPES = ("partOf", "dependsOn", "providesApi", "consumesApi")
_WIDTH, _HEIGHT, _GAP_X, _GAP_Y = 190, 34, 70, 14
MAX_NODES = 60


@dataclass
class Node:
    """A box in the graph."""

    ref: str
    label: str
    kind: str
    url: str
    x: int = 0
    y: int = 0
    current: bool = False


@dataclass
class Edge:
    """A line between two boxes, labelled with the relation type."""

    source: Node
    target: Node
    type: str


@dataclass
class SystemGraph:
    """Everything the template needs to draw the graph."""

    system_ref: str | None
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    truncated: bool = False


def system_graph(session: Session, entity: Entity) -> SystemGraph:
    """Return the graph of the entity's system: its domain, its parts and their links."""
    system_ref = entity.ref if entity.kind_key == "system" else entity.system_ref
    if system_ref is None:
        return SystemGraph(None)
    linked = session.exec(
        select(Relation.type, Relation.target_ref)
        .where(Relation.source_ref == system_ref, col(Relation.type).in_(("hasPart", "partOf")))
        .distinct()
    ).all()
    # Sorted, so that a system with more than MAX_NODES parts always shows the same ones.
    domains = sorted(target for type_, target in linked if type_ == "partOf")
    parts = sorted(target for type_, target in linked if type_ == "hasPart")
    refs = list(dict.fromkeys([system_ref, *domains, *parts]))[:MAX_NODES]
    labels = _labels(session, refs)
    nodes: dict[str, Node] = {}
    for ref in refs:
        kind = ref.split(":", 1)[0]
        label = labels.get(ref) or ref.split("/", 1)[1]
        nodes[ref] = Node(ref, label, kind, entity_url(ref), current=ref == entity.ref)
    rows = session.exec(
        select(Relation.source_ref, Relation.type, Relation.target_ref)
        .where(
            col(Relation.source_ref).in_(list(nodes)),
            col(Relation.target_ref).in_(list(nodes)),
            col(Relation.type).in_(_EDGE_TYPES),
        )
        .distinct()
    ).all()
    graph = SystemGraph(system_ref, truncated=len(parts) + len(domains) + 1 > MAX_NODES)
    graph.edges = [Edge(nodes[s], nodes[t], kind) for s, kind, t in rows if s != t]
    _layout(graph, list(nodes.values()))
    return graph


def _labels(session: Session, refs: list[str]) -> dict[str, str]:
    """Return the title (or name) of the stored entities among ``refs``; nothing else is read."""
    rows = session.exec(
        select(Entity.ref, Entity.title, Entity.name).where(col(Entity.ref).in_(refs))
    ).all()
    return {ref: title or name for ref, title, name in rows}


def _layout(graph: SystemGraph, nodes: list[Node]) -> None:
    columns: dict[int, list[Node]] = {}
    for node in sorted(nodes, key=lambda n: (n.kind, n.label)):
        columns.setdefault(_COLUMNS.get(node.kind, 2), []).append(node)
    for index, column_nodes in columns.items():
        for row, node in enumerate(column_nodes):
            node.x = 10 + index * (_WIDTH + _GAP_X)
            node.y = 10 + row * (_HEIGHT + _GAP_Y)
    graph.nodes = nodes
    graph.width = 20 + (max(columns) + 1) * (_WIDTH + _GAP_X) - _GAP_X if columns else 0
    tallest = max((len(column) for column in columns.values()), default=0)
    graph.height = 20 + tallest * (_HEIGHT + _GAP_Y)
