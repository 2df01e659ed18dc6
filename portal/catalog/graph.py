"""The graph of an entity's system: which entities and relations it shows (see graph_layout)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from portal.catalog.graph_layout import NODE_HEIGHT, NODE_WIDTH, Edge, Node, lay_out
from portal.catalog.models import Entity, Relation
from portal.catalog.present import entity_url
from portal.catalog.refs import split_key

_EDGE_TYPES = ("partOf", "dependsOn", "providesApi", "consumesApi")
MAX_NODES = 60

__all__ = ["MAX_NODES", "Edge", "Node", "SystemGraph", "system_graph"]


@dataclass
class SystemGraph:
    """Everything the template needs to draw the graph."""

    system_ref: str | None
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    truncated: bool = False
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def system_graph(session: Session, entity: Entity) -> SystemGraph:
    """Return the graph of the entity's system: its domain, its parts and their links.

    The entity itself is always drawn, first in the leftmost layer, even when its system
    has more than ``MAX_NODES`` parts.
    """
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
    wanted = list(dict.fromkeys([entity.ref, system_ref, *domains, *parts]))
    refs = wanted[:MAX_NODES]
    labels = _labels(session, refs)
    nodes: dict[str, Node] = {}
    for ref in refs:
        kind, _namespace, name = split_key(ref)
        nodes[ref] = Node(
            ref, labels.get(ref) or name, kind, entity_url(ref), current=ref == entity.ref
        )
    rows = session.exec(
        select(Relation.source_ref, Relation.type, Relation.target_ref)
        .where(
            col(Relation.source_ref).in_(list(nodes)),
            col(Relation.target_ref).in_(list(nodes)),
            col(Relation.type).in_(_EDGE_TYPES),
        )
        .distinct()
        .order_by(col(Relation.source_ref), col(Relation.type), col(Relation.target_ref))
    ).all()
    graph = SystemGraph(system_ref, truncated=len(wanted) > MAX_NODES)
    graph.nodes = list(nodes.values())
    graph.edges = [Edge(nodes[s], nodes[t], kind) for s, kind, t in rows if s != t]
    size = lay_out(graph.nodes, graph.edges, root=nodes[entity.ref])
    graph.width, graph.height = size.width, size.height
    return graph


def _labels(session: Session, refs: list[str]) -> dict[str, str]:
    """Return the title (or name) of the stored entities among ``refs``; nothing else is read."""
    rows = session.exec(
        select(Entity.ref, Entity.title, Entity.name).where(col(Entity.ref).in_(refs))
    ).all()
    return {ref: title or name for ref, title, name in rows}
