"""Geometry of the system graph: no edge passes through a box, no two edges share a line."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from portal.catalog.graph import system_graph
from portal.catalog.graph_layout import NODE_HEIGHT, NODE_WIDTH, Edge, Layout, Node, lay_out
from portal.catalog.importer import import_locations
from portal.catalog.store import get_entity
from portal.config import Settings
from tests.conftest import BACKSTAGE_EXAMPLES, REPO

Box = tuple[float, float, float, float]  # left, top, right, bottom
KINDS = ["domain", "system", "component", "api", "resource", "group", "airesource"]


def box(node: Node) -> Box:
    return (node.x, node.y, node.x + NODE_WIDTH, node.y + NODE_HEIGHT)


def segment_hits_box(start: tuple[float, float], end: tuple[float, float], rect: Box) -> bool:
    """Liang-Barsky clipping: True when the segment meets the closed rectangle at all."""
    (x0, y0), (x1, y1) = start, end
    left, top, right, bottom = rect
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for p, q in ((-dx, x0 - left), (dx, right - x0), (-dy, y0 - top), (dy, bottom - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def interior(rect: Box) -> Box:
    left, top, right, bottom = rect
    return (left + 0.5, top + 0.5, right - 0.5, bottom - 0.5)


def on_border(point: tuple[int, int], rect: Box) -> bool:
    x, y = point
    left, top, right, bottom = rect
    inside = left <= x <= right and top <= y <= bottom
    return inside and (x in (left, right) or y in (top, bottom))


def segments(edge: Edge) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    return [(a, b) for a, b in zip(edge.points, edge.points[1:], strict=False) if a != b]


def overlap(
    first: tuple[tuple[int, int], tuple[int, int]], second: tuple[tuple[int, int], tuple[int, int]]
) -> bool:
    """True when two axis-parallel segments lie on one line and share more than a point."""
    (ax0, ay0), (ax1, ay1) = first
    (bx0, by0), (bx1, by1) = second
    if ay0 == ay1 == by0 == by1:
        return min(max(ax0, ax1), max(bx0, bx1)) > max(min(ax0, ax1), min(bx0, bx1))
    if ax0 == ax1 == bx0 == bx1:
        return min(max(ay0, ay1), max(by0, by1)) > max(min(ay0, ay1), min(by0, by1))
    return False


def check_geometry(nodes: Sequence[Node], edges: Sequence[Edge], size: Layout) -> None:
    """Every property the drawing promises, computed on the coordinates it will be drawn at."""
    for first, second in combinations(nodes, 2):
        a, b = box(first), box(second)
        apart = a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]
        assert apart, f"boxes {first.ref} and {second.ref} overlap or touch"
    for node in nodes:
        assert node.x >= 0 and node.x + NODE_WIDTH <= size.width, node
        assert node.y >= 0 and node.y + NODE_HEIGHT <= size.height, node
    for edge in edges:
        assert len(edge.points) >= 2
        assert on_border(edge.points[0], box(edge.source)), (edge.type, edge.points)
        assert on_border(edge.points[-1], box(edge.target)), (edge.type, edge.points)
        for x, y in edge.points:
            assert 0 <= x <= size.width and 0 <= y <= size.height
        for start, end in segments(edge):
            assert start[0] == end[0] or start[1] == end[1], "edges are drawn orthogonally"
            for node in nodes:
                if node is edge.source or node is edge.target:
                    # Its own boxes are touched at the port only, never crossed.
                    assert not segment_hits_box(start, end, interior(box(node))), (
                        f"{edge.source.ref} -> {edge.target.ref} crosses its own box {node.ref}"
                    )
                else:
                    assert not segment_hits_box(start, end, box(node)), (
                        f"{edge.source.ref} -> {edge.target.ref} passes through {node.ref}"
                    )
    for one, other in combinations(edges, 2):
        shared = {id(one.source), id(one.target)} & {id(other.source), id(other.target)}
        if shared:
            continue  # lines that meet at a common box do relate to it
        for piece in segments(one):
            for other_piece in segments(other):
                assert not overlap(piece, other_piece), (
                    f"{one.source.ref}->{one.target.ref} and "
                    f"{other.source.ref}->{other.target.ref} share a line"
                )


@st.composite
def graphs(draw: st.DrawFn) -> tuple[list[Node], list[Edge], Node | None]:
    count = draw(st.integers(min_value=1, max_value=24))
    nodes = [
        Node(f"n{index}", draw(st.text("abcXYZ -", max_size=12)), draw(st.sampled_from(KINDS)), "")
        for index in range(count)
    ]
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, count - 1), st.integers(0, count - 1)).filter(
                lambda pair: pair[0] != pair[1]
            ),
            max_size=3 * count,
        )
    )
    edges = [
        Edge(nodes[a], nodes[b], draw(st.sampled_from(["partOf", "dependsOn"]))) for a, b in pairs
    ]
    root = draw(st.one_of(st.none(), st.sampled_from(nodes)))
    return nodes, edges, root


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_no_edge_passes_through_a_box_in_generated_graphs(
    graph: tuple[list[Node], list[Edge], Node | None],
) -> None:
    nodes, edges, root = graph
    size = lay_out(nodes, edges, root)
    check_geometry(nodes, edges, size)
    if root is not None:
        assert root.x == min(node.x for node in nodes) and root.layer == 0


def star_with_chain(parts: int) -> tuple[list[Node], list[Edge]]:
    """A system with many parts that also depend on each other: the old layout's worst case."""
    system = Node("system:default/s", "s", "system", "")
    others = [
        Node(f"{kind}:default/p{i}", f"p{i}", kind, "")
        for i, kind in enumerate(["component", "api", "resource"] * (parts // 3))
    ]
    edges = [Edge(part, system, "partOf") for part in others]
    edges += [Edge(a, b, "dependsOn") for a, b in zip(others, others[2:], strict=False)]
    return [system, *others], edges


@pytest.mark.parametrize("parts", [3, 12, 30, 59])
def test_dense_systems_keep_edges_out_of_boxes(parts: int) -> None:
    nodes, edges = star_with_chain(parts)
    size = lay_out(nodes, edges, root=nodes[1])
    check_geometry(nodes, edges, size)


def test_an_edge_from_a_node_to_itself_is_refused() -> None:
    node = Node("component:default/a", "a", "component", "")
    with pytest.raises(ValueError, match="to itself"):
        lay_out([node], [Edge(node, node, "dependsOn")])


@pytest.fixture
def catalog(session: Session, settings: Settings) -> Session:
    roots = [
        str(BACKSTAGE_EXAMPLES / "all.yaml"),
        str(BACKSTAGE_EXAMPLES / "acme-corp.yaml"),
        str(REPO / "catalog"),
    ]
    import_locations(session, roots, settings)
    return session


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("component", "artist-lookup"),
        ("system", "artist-engagement-portal"),
        ("component", "portal"),
        ("system", "observability"),
        ("api", "prometheus-query-api"),
    ],
)
def test_system_graphs_of_the_catalog_keep_edges_out_of_boxes(
    catalog: Session, kind: str, name: str
) -> None:
    entity = get_entity(catalog, kind, "default", name)
    assert entity is not None
    graph = system_graph(catalog, entity)
    assert graph.edges, "these systems have relations to draw"
    check_geometry(graph.nodes, graph.edges, Layout(graph.width, graph.height))
    current = [node for node in graph.nodes if node.current]
    assert [node.ref for node in current] == [entity.ref]
    assert current[0].x == min(node.x for node in graph.nodes)


def test_the_entity_is_drawn_even_past_the_node_limit(
    catalog: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("portal.catalog.graph.MAX_NODES", 2)
    entity = get_entity(catalog, "component", "default", "www-artist")
    assert entity is not None
    graph = system_graph(catalog, entity)
    assert graph.truncated
    assert [node.ref for node in graph.nodes] == [
        "component:default/www-artist",
        "system:default/artist-engagement-portal",
    ]
