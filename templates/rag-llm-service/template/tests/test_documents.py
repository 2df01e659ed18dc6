"""Reading documents: the kinds accepted, the limits, and HTML turned into text with headings."""

from __future__ import annotations

import hashlib

import pytest

from app.documents import DocumentError, html_to_text, read_document


def test_markdown_and_text_are_read_as_utf8_with_the_digest_of_their_bytes() -> None:
    """Line ends become newlines and a byte-order mark goes; the digest is of the bytes."""
    data = "\ufeff# Title\r\n\r\nCafé au lait.\r\n".encode()
    document = read_document("notes/menu.md", data, 1_000)
    assert document.kind == "markdown"
    assert document.source == "notes/menu.md"
    assert document.text == "# Title\n\nCafé au lait.\n"
    assert document.sha256 == hashlib.sha256(data).hexdigest()
    assert read_document("a.TXT", b"plain", 100).kind == "text"
    assert read_document("b.htm", b"<p>x</p>", 100).kind == "html"


@pytest.mark.parametrize(
    ("source", "data", "limit", "message"),
    [
        ("diagram.png", b"\x89PNG", 100, "diagram.png: unsupported file type (.png); accepted:"),
        ("Makefile", b"all:", 100, "Makefile: unsupported file type (no suffix)"),
        ("big.md", b"x" * 1_001, 1_000, "big.md: 1,001 bytes is over the limit of 1,000 bytes"),
        ("latin.txt", "café".encode("latin-1"), 100, "latin.txt: not UTF-8 text (invalid byte at"),
        ("nul.md", b"a\x00b", 100, "nul.md: binary content"),
        ("blank.md", b"  \n\n ", 100, "blank.md: no text to index"),
        ("empty.html", b"<html><script>x()</script></html>", 100, "empty.html: no text to index"),
    ],
)
def test_a_file_that_cannot_be_indexed_is_refused_naming_it(
    source: str, data: bytes, limit: int, message: str
) -> None:
    """Each refusal names the file and says why."""
    with pytest.raises(DocumentError) as error:
        read_document(source, data, limit)
    assert str(error.value).startswith(message)


def test_the_accepted_types_are_listed_when_one_is_refused() -> None:
    """The message tells what would be accepted."""
    with pytest.raises(DocumentError, match=r"\.htm, \.html, \.markdown, \.md, \.txt"):
        read_document("x.pdf", b"%PDF", 100)


def test_html_becomes_text_with_markdown_headings() -> None:
    """Headings keep their level, blocks their lines; hidden content and markup go."""
    html = """<!doctype html><html><head><title>Page title</title>
    <style>p { color: red }</style></head><body>
    <h1>Alerting</h1>
    <p>When the <b>error budget</b> burns &amp; the page
       fires, call the on-call.</p>
    <h3><a href="#s">Silences</a></h3>
    <ul><li>Use <code>amtool</code></li><li>Expire after 2h</li></ul>
    <script>document.write("hidden")</script>
    <pre>amtool silence add
  alertname=Foo</pre>
    <p>Line one<br>line two</p>
    </body></html>"""
    assert html_to_text(html) == (
        "# Alerting\n"
        "\n"
        "When the error budget burns & the page fires, call the on-call.\n"
        "\n"
        "### Silences\n"
        "\n"
        "- Use amtool\n"
        "- Expire after 2h\n"
        "\n"
        "amtool silence add\n"
        "  alertname=Foo\n"
        "\n"
        "Line one\n"
        "line two\n"
    )


def test_html_document_text_is_the_converted_text() -> None:
    """An HTML document's text (what chunks point into) is the text, not the markup."""
    document = read_document("page.html", b"<h2>Runbook</h2><p>Restart the pod.</p>", 1_000)
    assert document.text == "## Runbook\n\nRestart the pod.\n"
