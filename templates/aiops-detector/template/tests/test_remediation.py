"""What the rules propose: matching, cooldowns, hourly limits, the edits and the evidence."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from app.remediation import (
    RESTART_ANNOTATION,
    AnomalyWindow,
    Plan,
    ServiceState,
    change_payload,
    chart_url,
    previous_tag,
    replica_bounds_patch,
)
from app.rules import load_config
from app.windows import AnomalyWindow as DetectedWindow

from .remediation_cases import (
    QUERY,
    RULES,
    T0,
    FakeClock,
    FakeState,
    fired,
    remediator,
    window,
)


def test_a_window_of_the_detector_becomes_an_anomaly_window() -> None:
    """Epoch seconds become UTC times; the severity is one a rule can name."""
    start = T0.timestamp() - 300
    detected = DetectedWindow(start, T0.timestamp(), 2.5, start + 60, 4, False, True)
    assert AnomalyWindow.of(QUERY, detected) == AnomalyWindow(
        QUERY, T0 - timedelta(minutes=5), T0, 2.5, "critical", "seasonal", 1.0
    )
    with pytest.raises(ValueError, match="severity 'info' is not one of warning, critical"):
        AnomalyWindow(QUERY, T0, T0, 1.0, "info", "both")
    with pytest.raises(ValueError, match="start <= end"):
        AnomalyWindow(QUERY, T0, T0 - timedelta(seconds=1), 1.0, "warning", "both")


# --- matching, cooldown, hourly limit ------------------------------------------------------


def test_a_rule_fires_on_its_query_at_its_severity_or_above() -> None:
    """Severity at or above the minimum; the query as trained, whitespace aside."""
    rem = remediator()
    assert fired(rem, window(severity="warning")) == []  # the scale rule wants critical
    assert fired(rem, window("errors", severity="warning")) == ["back"]
    assert fired(rem, window("memory", severity="critical")) == ["bounce"]
    assert fired(rem, window("another query", severity="critical")) == []
    spaced = QUERY.replace(" (rate", "\n   (rate").replace("sum by", "sum  by")
    assert fired(rem, window(f"  {spaced}\n")) == ["scale"]


def test_a_rule_waits_its_cooldown() -> None:
    """A second proposal only ``cooldown`` seconds after the first."""
    clock = FakeClock()
    rem = remediator(clock=clock)
    assert fired(rem, window()) == ["scale"]
    clock.advance(599)
    assert fired(rem, window()) == []
    clock.advance(1)
    assert fired(rem, window()) == ["scale"]


def test_a_rule_proposes_at_most_max_per_hour() -> None:
    """Without a cooldown, the hourly maximum still holds, over a sliding hour."""
    clock = FakeClock()
    rem = remediator(clock=clock)
    memory = window("memory", severity="warning")
    assert fired(rem, memory) == ["bounce"]  # cooldown 0, at most 2 an hour
    clock.advance(60)
    assert fired(rem, memory) == ["bounce"]
    clock.advance(60)
    assert fired(rem, memory) == []
    clock.advance(3600 - 120 - 1)
    assert fired(rem, memory) == []
    clock.advance(1)  # an hour after the first
    assert fired(rem, memory) == ["bounce"]


def test_a_rule_that_cannot_propose_says_why_and_cools_down() -> None:
    """Unknown state or a minimum at the rule's max: no change, a reason, a cooldown."""
    clock = FakeClock()
    rem = remediator(clock=clock)
    unknown = ServiceState(problem="Prometheus is unreachable")
    [decision] = rem.decide(window(), {"scale": unknown})
    assert decision.payload is None
    assert decision.summary == (
        "not proposed: the deployed HPA bounds are unknown: Prometheus is unreachable"
    )
    assert rem.decide(window(), {"scale": FakeState().state}) == []  # cooling down
    clock.advance(600)
    at_max = ServiceState(min_replicas=5, max_replicas=5)
    [decision] = rem.decide(window(), {"scale": at_max})
    assert "the HPA minimum is 5, already at the rule's max 5" in decision.summary


# --- the edits -----------------------------------------------------------------------------


def test_scale_out_replaces_the_overlay_bounds_it_checked() -> None:
    """The HPA patch of the overlay is replaced only if it still holds the bounds read."""
    [decision] = remediator().decide(window(), {"scale": ServiceState(4, 4)})
    assert decision.payload is not None
    [edit] = decision.payload["edits"]
    assert edit["path"] == "services/checkout/deploy/overlays/prod/kustomization.yaml"
    patch = edit["patch"]
    assert (patch["type"], patch["target"]) == ("json6902", {"kind": "Kustomization"})
    assert patch["patch"] == [
        {"op": "test", "path": "/patches/0/target/kind", "value": "HorizontalPodAutoscaler"},
        {"op": "test", "path": "/patches/0/patch", "value": replica_bounds_patch(4, 4)},
        {"op": "replace", "path": "/patches/0/patch", "value": replica_bounds_patch(5, 5)},
    ]
    assert decision.payload["title"] == (
        "Scale out checkout in prod: HPA minimum 4 to 5 (AIOps rule scale)"
    )
    assert "and the maximum from 4 to 5" in decision.payload["reason"]
    bigger = remediator(RULES.replace("step: 1, max: 5", "step: 3, max: 5"))
    [decision] = bigger.decide(window(), {"scale": ServiceState(3, 6)})
    assert decision.payload is not None
    assert decision.payload["title"].startswith("Scale out checkout in prod: HPA minimum 3 to 5 ")
    assert replica_bounds_patch(2, 4) == (
        "- op: replace\n  path: /spec/minReplicas\n  value: 2\n"
        "- op: replace\n  path: /spec/maxReplicas\n  value: 4"
    )


def test_rollback_picks_the_tag_before_the_deployed_one() -> None:
    """The tag released before the running one; none before the oldest or an unknown."""
    history = ["1.3.0", "1.4.0", "1.5.0"]
    assert previous_tag(history, "1.5.0") == "1.4.0"
    assert previous_tag(history, "1.4.0") == "1.3.0"
    for deployed, why in [("1.3.0", "is the oldest"), ("2.0.0", "is not in"), (None, "unknown")]:
        with pytest.raises(ValueError, match=why):
            previous_tag(history, deployed)
    rem = remediator()
    [decision] = rem.decide(window("errors"), {"back": ServiceState(image_tag="1.5.0")})
    assert decision.payload is not None
    [edit] = decision.payload["edits"]
    assert edit["path"] == "services/checkout/deploy/overlays/staging/kustomization.yaml"
    assert edit["patch"]["patch"] == [
        {"op": "test", "path": "/images/0/name", "value": "registry.example.com/services/checkout"},
        {"op": "test", "path": "/images/0/newTag", "value": "1.5.0"},
        {"op": "replace", "path": "/images/0/newTag", "value": "1.4.0"},
    ]
    assert "ImagePolicy" in decision.payload["reason"]


def test_restart_stamps_the_pod_template_annotation_with_the_clock() -> None:
    """A restart is a new commonAnnotations timestamp in the overlay."""
    [decision] = remediator().decide(window("memory", severity="warning"), {})
    assert decision.payload is not None
    [edit] = decision.payload["edits"]
    assert edit["patch"] == {
        "type": "strategic-merge",
        "target": {"kind": "Kustomization"},
        "patch": {"commonAnnotations": {RESTART_ANNOTATION: "2026-03-02T10:00:00Z"}},
    }


def test_the_payload_carries_the_evidence() -> None:
    """Query, window, scores and the chart link, as the portal's evidence items."""
    [decision] = remediator().decide(window(), {"scale": ServiceState(2, 4)})
    payload = decision.payload
    assert payload is not None
    assert set(payload) == {"service", "title", "reason", "edits", "evidence"}
    assert payload["service"] == "checkout"
    evidence = {item["label"]: item for item in payload["evidence"]}
    assert evidence["query"] == {"label": "query", "text": QUERY}
    assert evidence["anomaly window"]["text"] == (
        "2026-03-02T09:55:00+00:00 to 2026-03-02T10:00:00+00:00 (5 min)"
    )
    assert evidence["scores"]["text"] == (
        "peak score 3.200, threshold 1.000, severity critical, detector both"
    )
    chart = urlsplit(evidence["chart"]["url"])
    assert (chart.scheme, chart.netloc, chart.path) == ("https", "detector.example.com", "/")
    assert parse_qs(chart.query)["query"] == [QUERY]
    assert "Rule scale (severity critical or above) proposes to raise" in payload["reason"]
    assert "at most 2 changes an hour, 600 s apart" in payload["reason"]


def test_a_long_or_odd_query_still_makes_evidence_the_portal_stores() -> None:
    """Control characters are blanked, text is bounded, a too long link points at the page."""
    rule = load_config(RULES).rules[0]
    odd = window("up\x00" + "x" * 12_000)
    detector = "https://detector.example.com"
    body = change_payload(rule, odd, Plan([], "A title", "do it"), chart_url(detector, odd))
    evidence = {item["label"]: item for item in body["evidence"]}
    assert evidence["query"]["text"] == ("up " + "x" * 12_000)[:10_000]
    assert evidence["chart"]["url"] == "https://detector.example.com/"
    assert chart_url(detector, window()).startswith("https://detector.example.com/?query=sum+by")
