import pytest
import yaml

from portal.yaml_source import YamlStream, compose_nodes, line_of

TEXT = """\
kind: Component
metadata:
  name: payments
  labels:
    team: a
spec:
  ports:
    - 8080
    - 9090
  1: one
"""


def read(text: str, **limits: int) -> tuple[list[object], YamlStream]:
    stream = YamlStream(text, **limits)
    return [document.data for document in stream], stream


def test_line_of_a_key_path_and_of_its_nearest_parent() -> None:
    (node,) = compose_nodes(TEXT)
    assert line_of(node, ["metadata", "labels", "team"]) == 5
    assert line_of(node, ["spec", "ports", 1]) == 9
    # A key YAML read as a number is found by its text.
    assert line_of(node, ["spec", 1]) == 10
    # Missing: the nearest existing parent's key line, or nothing when asked for the path only.
    assert line_of(node, ["metadata", "owner"]) == 2
    assert line_of(node, ["metadata", "owner"], nearest=False) is None
    assert line_of(node, ["spec", "ports", 5], nearest=False) is None
    assert line_of(node, ["spec", "ports", -1], nearest=False) is None
    assert line_of(None, ["kind"]) is None


def test_documents_keep_their_lines_and_a_syntax_error_stops_the_stream() -> None:
    stream = YamlStream("a: 1\n---\n---\nb: [1, 2\nc: 3\n")
    documents = list(stream)
    assert [(d.index, d.line, d.data) for d in documents] == [(0, 1, {"a": 1}), (1, 3, None)]
    assert stream.problem is not None
    assert stream.problem.kind == "syntax"
    assert stream.problem.line is not None and stream.problem.line >= 4
    assert documents[0].line_of(["a", "missing"]) == 1


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb:\n  c: 2\n  c: 3\nd: 4\n",  # read by the fast path
        "a: &x 1\nb:\n  c: *x\n  c: 3\nd: 4\n",  # an anchor: PyYAML's constructor
        "a: 1\nb:\n  c: 2\n  c: 3\nd: 2024-01-01\n",  # the fast path gives up halfway
    ],
)
def test_duplicate_keys_are_recorded_once_at_their_line(text: str) -> None:
    data, stream = read(text)
    assert data[0] is not None and data[0]["b"] == {"c": 3}  # type: ignore[index]
    assert stream.duplicates == [("c", 4)]


def test_distinct_keys_are_not_duplicates() -> None:
    _, stream = read("a: 1\nb: 2\nc: {d: 1, e: 2}\n")
    assert stream.duplicates == []


def test_alias_bombs_and_deep_nesting_are_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    data, stream = read(bomb, max_aliases=1000, max_nodes=100_000)
    assert data == []
    assert stream.problem is not None and stream.problem.kind == "limit"
    assert "expand" in stream.problem.reason

    data, stream = read("a: " + "[" * 300 + "]" * 300 + "\n")
    assert data == []
    assert stream.problem is not None and "nesting" in stream.problem.reason


def test_python_objects_are_never_built() -> None:
    data, stream = read("a: !!python/object/apply:os.system ['true']\n")
    assert data == []
    assert stream.problem is not None and stream.problem.kind == "syntax"
    assert "constructor" in stream.problem.reason


def test_compose_nodes_of_invalid_text_is_empty() -> None:
    assert compose_nodes("a: [1\n") == ()
    assert [type(node) for node in compose_nodes("a: 1\n---\n- 2\n")] == [
        yaml.MappingNode,
        yaml.SequenceNode,
    ]
