from portal.catalog.parse import read_yaml_stream

MULTI = """\
# a comment before the first document
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: jane
spec:
  memberOf:
    - team-a
    - team-b
"""


def test_multi_document_stream_keeps_document_lines() -> None:
    result = read_yaml_stream(MULTI)
    assert result.error is None
    assert [d.index for d in result.documents] == [0, 1]
    assert [d.line for d in result.documents] == [2, 7]
    second = result.documents[1]
    assert second.line_of(["spec", "memberOf", 1]) == 14
    assert second.line_of(["metadata", "name"]) == 10
    # A missing field points at the key line of its nearest existing parent (spec:).
    assert second.line_of(["spec", "profile", "email"]) == 11


def test_syntax_error_keeps_earlier_documents_and_names_the_line() -> None:
    text = "a: 1\n---\nb: [1, 2\nc: 3\n"
    result = read_yaml_stream(text)
    assert [d.data for d in result.documents] == [{"a": 1}]
    assert result.error is not None and "syntax" in result.error
    assert result.error_line is not None and result.error_line >= 3


def test_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefgh":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    result = read_yaml_stream(bomb, max_aliases=1000, max_nodes=100_000)
    assert result.documents == []
    assert result.error is not None and "expand" in result.error


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 20) + "]\n"
    assert read_yaml_stream(text, max_aliases=5).error == "more than 5 YAML aliases"
    assert read_yaml_stream(text, max_aliases=50).error is None


def test_unsafe_tags_are_not_constructed() -> None:
    result = read_yaml_stream("a: !!python/object/apply:os.system ['true']\n")
    assert result.documents == []
    assert result.error is not None
