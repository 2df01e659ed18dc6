"""Splitting and highlighting unified diffs for the change page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from portal.review import diff as diff_module
from portal.review.diff import (
    FileDiff,
    file_tree,
    lexer_for,
    render_file,
    split_diff,
    stylesheet,
)

ADDED_SCRIPT = """\
diff --git a/services/web/app.py b/services/web/app.py
new file mode 100644
index 0000000..1111111
--- /dev/null
+++ b/services/web/app.py
@@ -0,0 +1,3 @@
+def page() -> str:
+    return "<script>alert('x')</script> & more"
+# end
"""

MODIFIED = """\
diff --git a/clusters/dev/infrastructure.yaml b/clusters/dev/infrastructure.yaml
index 2222222..3333333 100644
--- a/clusters/dev/infrastructure.yaml
+++ b/clusters/dev/infrastructure.yaml
@@ -1,3 +1,3 @@
 kind: Kustomization
-interval: 10m
+interval: 5m <img src=x onerror=alert(1)>
 prune: true
"""

DELETED_AND_BINARY = """\
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 4444444..0000000
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
\\ No newline at end of file
diff --git a/logo.png b/logo.png
new file mode 100644
index 0000000..5555555
Binary files /dev/null and b/logo.png differ
diff --git "a/caf\\303\\251 menu.md" "b/caf\\303\\251 menu.md"
new file mode 100644
index 0000000..6666666
--- /dev/null
+++ "b/caf\\303\\251 menu.md"
@@ -0,0 +1 @@
+# Menu
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
"""


def test_split_reads_each_file_with_its_kind_and_counts() -> None:
    files = split_diff(ADDED_SCRIPT + MODIFIED + DELETED_AND_BINARY)
    summary = [(f.path, f.change, f.additions, f.deletions, f.binary) for f in files]
    assert summary == [
        ("services/web/app.py", "added", 3, 0, False),
        ("clusters/dev/infrastructure.yaml", "modified", 1, 1, False),
        ("old.txt", "deleted", 0, 1, False),
        ("logo.png", "added", 0, 0, True),
        ("café menu.md", "added", 1, 0, False),
        ("run.sh", "mode", 0, 0, False),
    ]
    assert files[1].hunks[0].startswith("@@ -1,3 +1,3 @@")
    assert split_diff("") == []


def html_of(file: FileDiff, limit: int = diff_module.MAX_FILE_LINES) -> str:
    return "\n".join(str(row.html) for row in render_file(file, limit).rows)


def test_added_files_are_highlighted_as_their_language_and_escaped() -> None:
    [file] = split_diff(ADDED_SCRIPT)
    rendered = render_file(file)
    html = html_of(file)
    assert rendered.language == "Python"
    assert "<script>" not in html and "&lt;script&gt;" in html and "&amp; more" in html
    assert '<span class="k">def</span>' in html  # Python keywords are tokens
    assert "+def" not in html  # the content, not the diff markers
    # One row per line of the new file, numbered from 1 on the new side.
    assert [(row.kind, row.old, row.new) for row in rendered.rows] == [
        ("new", None, 1),
        ("new", None, 2),
        ("new", None, 3),
    ]
    assert [(row.side, row.line) for row in rendered.rows] == [("new", n) for n in (1, 2, 3)]


def test_other_files_use_the_diff_lexer_with_both_sides_numbered() -> None:
    [file] = split_diff(MODIFIED)
    rendered = render_file(file)
    html = html_of(file)
    assert rendered.language == "diff"
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'class="gd"' in html and 'class="gi"' in html  # deleted and inserted lines
    assert [(row.kind, row.old, row.new) for row in rendered.rows] == [
        ("hunk", None, None),
        ("ctx", 1, 1),
        ("del", 2, None),
        ("add", None, 2),
        ("ctx", 3, 3),
    ]
    # A comment on a removed line refers to the old side, any other line to the new one.
    assert [(row.side, row.line) for row in rendered.rows] == [
        (None, None),
        ("new", 1),
        ("old", 2),
        ("new", 2),
        ("new", 3),
    ]


def test_hunk_numbers_follow_the_hunk_headers() -> None:
    text = (
        "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n"
        "@@ -10,2 +12,3 @@ section\n keep\n+new\n-old\n keep2\n"
    )
    [file] = split_diff(text)
    numbers = [(row.kind, row.old, row.new) for row in render_file(file).rows]
    assert numbers == [
        ("hunk", None, None),
        ("ctx", 10, 12),
        ("add", None, 13),
        ("del", 11, None),
        ("ctx", 12, 14),
    ]


def test_binary_mode_and_empty_files_render_no_code() -> None:
    files = split_diff(DELETED_AND_BINARY)
    rendered = [render_file(file) for file in files]
    assert [len(r.rows) for r in rendered] == [3, 0, 1, 0]
    assert rendered[0].language == "diff" and "gone" in html_of(files[0])
    assert rendered[0].rows[-1].kind == "note"  # "\ No newline at end of file"
    assert files[2].path == "café menu.md" and "Menu" in html_of(files[2])


def test_lexer_is_guessed_from_the_file_name_only() -> None:
    assert lexer_for("services/a/deploy/base/deployment.yaml").name == "YAML"
    assert lexer_for("services/a/Dockerfile").name == "Docker"
    assert lexer_for("services/a/.dockerignore").name == "Text only"
    assert lexer_for("no-extension").name == "Text only"


def test_large_files_are_truncated() -> None:
    body = "".join(f"+line {n}\n" for n in range(1, 21))
    text = (
        "diff --git a/big.txt b/big.txt\nnew file mode 100644\n--- /dev/null\n+++ b/big.txt\n"
        f"@@ -0,0 +1,20 @@\n{body}"
    )
    [file] = split_diff(text)
    cut = render_file(file, 5)
    assert cut.truncated and (cut.shown_lines, cut.total_lines) == (5, 20)
    assert "line 5" in html_of(file, 5) and "line 6" not in html_of(file, 5)
    assert not render_file(file).truncated


def test_very_long_lines_are_clipped() -> None:
    long_line = "x" * (diff_module.MAX_LINE_CHARS + 500)
    text = (
        "diff --git a/min.js b/min.js\nnew file mode 100644\n--- /dev/null\n+++ b/min.js\n"
        f"@@ -0,0 +1 @@\n+{long_line}\n"
    )
    [file] = split_diff(text)
    html = html_of(file)
    assert "x" * diff_module.MAX_LINE_CHARS in html and long_line not in html and "…" in html


def test_spans_that_change_nothing_are_left_out() -> None:
    [row] = render_file(
        split_diff(
            "diff --git a/k.yaml b/k.yaml\nnew file mode 100644\n--- /dev/null\n+++ b/k.yaml\n"
            "@@ -0,0 +1 @@\n+kind: Service  # web\n"
        )[0]
    ).rows
    html = str(row.html)
    # Keys, values and comments keep their colours; punctuation and whitespace, which
    # no rule colours apart from the text's own colour, are plain text.
    assert '<span class="nt">kind</span>' in html and '<span class="c1"># web</span>' in html
    assert '<span class="l">Service</span>' in html  # not "l l-Scalar l-Scalar-Plain"
    assert 'class="p"' not in html and 'class="w"' not in html
    assert html.startswith('<span class="nt">kind</span>: ')


@dataclass(frozen=True)
class Named:
    path: str


def test_file_tree_nests_folders_and_merges_single_child_chains() -> None:
    paths = [
        "clusters/dev/services/web.yaml",
        "clusters/prod/services/web.yaml",
        "services/web/app/main.py",
        "services/web/README.md",
    ]
    tree = file_tree(Named(path) for path in paths)

    def shape(nodes: Sequence[diff_module.TreeNode]) -> list[object]:
        out: list[object] = []
        for node in nodes:
            out.append(node.name if node.file else (node.name, shape(node.children)))
        return out

    assert shape(tree) == [
        ("clusters", [("dev/services", ["web.yaml"]), ("prod/services", ["web.yaml"])]),
        ("services/web", [("app", ["main.py"]), "README.md"]),
    ]


def test_stylesheet_is_scoped_and_covers_light_and_dark() -> None:
    css = stylesheet()
    rules = [line.strip() for line in css.splitlines() if "{" in line and "@media" not in line]
    assert rules and all(rule.startswith(".highlight") for rule in rules)
    assert "@media (prefers-color-scheme: dark)" in css
    assert ".highlight .gi" in css and ".highlight .k" in css
