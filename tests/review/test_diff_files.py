"""Which files the change page collapses (minified, vendored, large, generated, binary), and
the page's budget of rows shown at once."""

from __future__ import annotations

import hashlib

from portal.integrations.gitops_blobs import ChangedBlob
from portal.review import diff_files
from portal.review.diff import split_diff
from portal.review.diff_files import classify, collapse_reasons, looks_minified, within_budget


def added(path: str, content: bytes) -> str:
    lines = content.decode().splitlines()
    body = "".join(f"+{line}\n" for line in lines)
    return (
        f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        f"@@ -0,0 +1,{len(lines)} @@\n{body}"
    )


def blob(path: str, content: bytes) -> tuple[ChangedBlob, str]:
    sha = hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
    return ChangedBlob(path, "A", None, sha, "100644"), sha


def test_minified_is_recognised_by_content_not_by_name() -> None:
    one_line = b"var a=1;" * 300  # 2,400 bytes, no newline
    assert looks_minified(one_line)
    long_line = b"x = 1\n" * 200 + b"y = '" + b"z" * diff_files.MINIFIED_LINE_CHARS + b"'\n"
    assert looks_minified(long_line)
    few_newlines = (b"a" * 250 + b"\n") * 10  # every line below the limit, 250 bytes a line
    assert looks_minified(few_newlines)
    code = b"def f():\n    return 1\n" * 200  # 4,400 bytes of ordinary lines
    assert not looks_minified(code)
    assert not looks_minified(b"x" * (diff_files.MINIFIED_MIN_BYTES - 1))  # too small to tell


def test_reasons_name_every_rule_that_applies() -> None:
    [script] = split_diff(added("static/app.min.js", b"var a=1;" * 3000))
    content = b"var a=1;" * 3000  # 24,000 bytes on one line
    assert collapse_reasons(script, content) == ("minified", "large")
    vendored = "vendored from template web v1.2.0"
    assert collapse_reasons(script, content, vendored) == (vendored, "minified", "large")
    many = b"".join(b"line %d\n" % n for n in range(diff_files.LARGE_FILE_LINES + 1))
    [long_file] = split_diff(added("data.txt", many))
    assert collapse_reasons(long_file, many) == ("large",)
    [lock] = split_diff(added("requirements.lock", b"pkg==1.0\n"))
    assert collapse_reasons(lock, b"pkg==1.0\n") == ("generated lock file",)
    [small] = split_diff(added("app.py", b"print(1)\n"))
    assert collapse_reasons(small, b"print(1)\n") == ()


def test_classify_gives_size_digest_and_reasons() -> None:
    code, minified = b"print('hello')\n", b"var a=1;" * 400
    text = added("app.py", code) + added("static/x.js", minified)
    (code_blob, code_sha), (js_blob, js_sha) = blob("app.py", code), blob("static/x.js", minified)
    contents = {code_sha: code, js_sha: minified}
    blobs = {"app.py": code_blob, "static/x.js": js_blob}

    def vendored(path: str, sha: str) -> str | None:
        return "vendored from template t v1" if sha == js_sha else None

    diff = classify("b" * 40, "h" * 40, split_diff(text), blobs, contents, vendored)
    first, second = diff.entries
    assert (first.path, first.collapsed, first.size) == ("app.py", False, len(code))
    assert first.sha256 == hashlib.sha256(code).hexdigest()
    assert second.reasons == ("vendored from template t v1", "minified")
    assert second.short_digest == hashlib.sha256(minified).hexdigest()[:12]
    assert diff.entry("static/x.js") is second and diff.entry("../static/x.js") is None
    assert diff.lines("app.py", "new") == ["print('hello')"]
    assert diff.lines("app.py", "old") is None  # an added file has no old side
    everything = classify(
        "b" * 40, "h" * 40, split_diff(text), blobs, contents, vendored, expand=True
    )
    assert not any(entry.collapsed for entry in everything.entries)


def test_the_budget_defers_later_files_in_order() -> None:
    text = "".join(added(f"f{n}.txt", b"x\n") for n in range(4))
    diff = classify("b" * 40, "h" * 40, split_diff(text), {}, {})
    sizes = {"f0.txt": 40, "f1.txt": 55, "f2.txt": 10, "f3.txt": 1}  # f3 would fit
    kept = within_budget(diff, lambda entry: sizes[entry.path], budget=100)
    assert [entry.deferred for entry in kept.entries] == [False, False, True, True]
    assert all(entry.reasons == () for entry in kept.entries)
    assert not any(e.deferred for e in within_budget(diff, lambda e: 1, budget=100).entries)
