"""Evidence supplied with a proposal: links, texts and figures, each checked and named."""

from __future__ import annotations

import base64

from portal.proposals.evidence import EvidenceItem, checked_evidence

PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def test_links_texts_and_figures_are_stored_as_sent() -> None:
    errors: dict[str, str] = {}
    items = [
        EvidenceItem(" p95 latency ", url="https://grafana.example.com/d/a?from=now-7d"),
        EvidenceItem("notes", text="line one\nline two"),
        EvidenceItem("burn", figure=PNG),
    ]
    assert checked_evidence(items, errors) == [
        {"label": "p95 latency", "url": "https://grafana.example.com/d/a?from=now-7d"},
        {"label": "notes", "text": "line one\nline two"},
        {"label": "burn", "figure": PNG},
    ]
    assert errors == {}


def test_each_problem_names_its_field() -> None:
    errors: dict[str, str] = {}
    gif_said_png = "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode()
    items = [
        EvidenceItem("a", url="javascript:alert(1)"),
        EvidenceItem("b", url="https://user:secret@example.com/x"),
        EvidenceItem("c", figure=gif_said_png),
        EvidenceItem("d", figure="data:image/svg+xml;base64,PHN2Zz4="),
        EvidenceItem("e", figure="data:image/png;base64,!!!"),
        EvidenceItem("f", url="https://example.com", text="both"),
        EvidenceItem("g"),
        EvidenceItem("", text="x"),
        EvidenceItem("h", text="bell\x07"),
    ]
    assert checked_evidence(items, errors) == []
    assert "http or https" in errors["evidence[0].url"]
    assert "without credentials" in errors["evidence[1].url"]
    assert "not a PNG image" in errors["evidence[2].figure"]
    assert "data URL of a PNG" in errors["evidence[3].figure"]
    assert "data URL of a PNG" in errors["evidence[4].figure"]
    assert (
        errors["evidence[5]"] == errors["evidence[6]"] == "give exactly one of url, text or figure"
    )
    assert "1 to 200 characters" in errors["evidence[7].label"]
    assert "control characters" in errors["evidence[8].text"]
    too_many: dict[str, str] = {}
    checked_evidence([EvidenceItem("x", text="y")] * 21, too_many)
    assert too_many == {"evidence": "at most 20 pieces of evidence"}
