"""Other spec formats (OpenSLO v1, Pyrra, Sloth's CRD) and the PrometheusRule output."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.generate import GenerateOptions, OutputFormat, generate_sources
from tests.slo.support import parsed

QUERY_BAD = 'sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))'
QUERY_GOOD = 'sum(rate(http_requests_total{job="api",code!~"5.."}[{{.window}}]))'
QUERY_TOTAL = 'sum(rate(http_requests_total{job="api"}[{{.window}}]))'


def prometheus_source(metric: str) -> dict[str, Any]:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": metric}}}


OPENSLO_SLI: dict[str, Any] = {
    "apiVersion": "openslo/v1",
    "kind": "SLI",
    "metadata": {"name": "api-errors"},
    "spec": {
        "ratioMetric": {
            "counter": True,
            "bad": prometheus_source(QUERY_BAD),
            "total": prometheus_source(QUERY_TOTAL),
        }
    },
}
OPENSLO_SLO: dict[str, Any] = {
    "apiVersion": "openslo/v1",
    "kind": "SLO",
    "metadata": {"name": "api-availability", "labels": {"team": "payments"}},
    "spec": {
        "description": "API availability",
        "service": "api",
        "indicatorRef": "api-errors",
        "timeWindow": [{"duration": "28d", "isRolling": True}],
        "budgetingMethod": "Occurrences",
        "objectives": [{"displayName": "good", "target": 0.999}],
    },
}


def rules_of(sources: dict[str, Any], **options: Any) -> dict[str, dict[str, Any]]:
    """Generate, then index every rule of every file by (group suffix, record/alert name)."""
    texts = {
        name: "---\n".join(
            yaml.safe_dump(doc) for doc in (docs if isinstance(docs, list) else [docs])
        )
        for name, docs in sources.items()
    }
    rules = {}
    for document in parsed(generate_sources(texts, GenerateOptions(**options))):
        for group in document["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"] + "/" + rule["labels"]["sloth_severity"]
                rules[f"{group['name']}:{name}"] = rule
    return rules


def errors_of(documents: list[dict[str, Any]]) -> list[SpecError]:
    text = "---\n".join(yaml.safe_dump(doc) for doc in documents)
    with pytest.raises(InvalidSpecError) as caught:
        generate_sources({"slo.yaml": text})
    return list(caught.value.errors)


def test_openslo_bad_over_total_becomes_events() -> None:
    rules = rules_of({"slo.yaml": [OPENSLO_SLI, OPENSLO_SLO]})
    prefix = "sloth-slo-sli-recordings-api-api-availability"

    sli = rules[f"{prefix}:slo:sli_error:ratio_rate5m"]
    assert sli["expr"] == (
        '(sum(rate(http_requests_total{job="api",code=~"5.."}[5m])))\n/\n'
        '(sum(rate(http_requests_total{job="api"}[5m])))\n'
    )
    assert sli["labels"]["team"] == "payments"
    # The 28d time window is the period: 4w, with the 28d windows' factors.
    assert f"{prefix}:slo:sli_error:ratio_rate4w" in rules
    info = rules["sloth-slo-meta-recordings-api-api-availability:sloth_slo_info"]["labels"]
    assert (info["sloth_spec"], info["sloth_mode"], info["sloth_objective"]) == (
        "openslo/v1",
        "cli-gen-openslo",
        "99.9",
    )
    page = rules["sloth-slo-alerts-api-api-availability:ApiAvailabilityBurnRate/page"]
    assert "(13.44 * " in page["expr"]


def test_openslo_good_over_total_and_raw_become_error_ratios() -> None:
    slo = copy.deepcopy(OPENSLO_SLO)
    del slo["spec"]["indicatorRef"]
    slo["spec"]["indicator"] = {
        "metadata": {"name": "inline"},
        "spec": {
            "ratioMetric": {
                "good": prometheus_source(QUERY_GOOD),
                "total": prometheus_source(QUERY_TOTAL),
            }
        },
    }
    rules = rules_of({"slo.yaml": slo})
    expr = rules["sloth-slo-sli-recordings-api-api-availability:slo:sli_error:ratio_rate1h"]["expr"]
    assert expr == (
        '(1 - (\n(sum(rate(http_requests_total{job="api",code!~"5.."}[1h])))\n/\n'
        '(sum(rate(http_requests_total{job="api"}[1h])))\n))'
    )

    ratio = "sum(rate(errors[{{.window}}])) / sum(rate(requests[{{.window}}]))"
    for raw_type, expected in (
        ("failure", "(sum(rate(errors[5m])) / sum(rate(requests[5m])))"),
        ("success", "(1 - (\nsum(rate(errors[5m])) / sum(rate(requests[5m]))\n))"),
    ):
        slo["spec"]["indicator"]["spec"]["ratioMetric"] = {
            "rawType": raw_type,
            "raw": prometheus_source(ratio),
        }
        rules = rules_of({"slo.yaml": slo})
        key = "sloth-slo-sli-recordings-api-api-availability:slo:sli_error:ratio_rate5m"
        assert rules[key]["expr"] == expected


def test_openslo_sli_may_live_in_another_file_and_objectives_become_slos() -> None:
    slo = copy.deepcopy(OPENSLO_SLO)
    slo["spec"]["objectives"] = [{"target": 0.99}, {"targetPercent": 99.9}]
    slo["spec"]["timeWindow"] = [{"duration": "30d", "isRolling": True}]
    service = {
        "apiVersion": "openslo/v1",
        "kind": "Service",
        "metadata": {"name": "api"},
        "spec": {},
    }

    rules = rules_of({"sli.yaml": OPENSLO_SLI, "slo.yaml": [service, slo]})

    objectives = {
        key: rule["expr"] for key, rule in rules.items() if key.endswith(":slo:objective:ratio")
    }
    assert objectives == {
        "sloth-slo-meta-recordings-api-api-availability-0:slo:objective:ratio": "vector(0.99)",
        "sloth-slo-meta-recordings-api-api-availability-1:slo:objective:ratio": (
            "vector(0.9990000000000001)"
        ),
    }


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"budgetingMethod": "Weekly"}, "spec.budgetingMethod", "one of Occurrences, Timeslices"),
        (
            {"timeWindow": [{"duration": "1M", "calendar": {"startTime": "2024-01-01"}}]},
            "spec.timeWindow[0]",
            "rolling",
        ),
        ({"indicatorRef": "missing"}, "spec.indicatorRef", 'no SLI named "missing"'),
        ({"objectives": [{"target": 1.0}]}, "spec.objectives[0].target", "above 0 and below 100"),
        (
            {"objectives": [{"target": 0.9, "targetPercent": 90}]},
            "spec.objectives[0]",
            "exactly one",
        ),
        (
            {"timeWindow": [{"duration": "1d", "isRolling": True}]},
            "spec.timeWindow[0].duration",
            "too short for multiwindow alerts",
        ),
        ({"alertPolicie": []}, "spec.alertPolicie", "unknown field"),
    ],
)
def test_openslo_errors_name_the_openslo_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    slo = copy.deepcopy(OPENSLO_SLO)
    slo["spec"].update(change)

    (error,) = errors_of([OPENSLO_SLI, slo])

    assert error.field == field
    assert message in error.message


def test_openslo_threshold_metric_errors_come_all_at_once() -> None:
    sli = copy.deepcopy(OPENSLO_SLI)
    sli["spec"] = {"thresholdMetric": {"metricSource": {"type": "Prometheus", "spec": {}}}}

    errors = errors_of([sli, OPENSLO_SLO])

    # The SLI's own problem, that the SLO cannot use it, and that Occurrences cannot count a
    # threshold metric: one run lists all three.
    assert [(error.slo, error.field, error.line) for error in errors] == [
        (None, "spec.thresholdMetric.metricSource.spec.query", 8),
        ("api-availability", "spec.indicatorRef", 20),
        ("api-availability", "spec.indicatorRef", 20),
    ]
    assert errors[0].message == "required: the PromQL query"
    assert 'the SLI "api-errors" cannot be used (see its errors at slo.yaml:8)' in errors[1].message
    assert "Occurrences budgeting needs a ratioMetric" in errors[2].message


def test_openslo_other_versions_are_rejected() -> None:
    (error,) = errors_of([{**OPENSLO_SLO, "apiVersion": "openslo/v1alpha"}])
    assert error.field == "apiVersion"


def pyrra(indicator: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "pyrra.dev/v1alpha1",
        "kind": "ServiceLevelObjective",
        "metadata": {
            "name": "api-slo",
            "namespace": "shop",
            "labels": {"pyrra.dev/team": "payments", "prometheus": "k8s"},
        },
        "spec": {"target": "99.5", "window": "4w", "indicator": indicator, **spec},
    }


def sli_expr(rules: dict[str, dict[str, Any]], window: str = "5m") -> str:
    return str(
        rules[f"sloth-slo-sli-recordings-shop-api-slo:slo:sli_error:ratio_rate{window}"]["expr"]
    )


def test_pyrra_ratio() -> None:
    indicator = {
        "ratio": {
            "errors": {"metric": 'http_requests_total{job="api",code=~"5.."}'},
            "total": {"metric": 'http_requests_total{job="api"}'},
            "grouping": ["route"],
        }
    }
    rules = rules_of({"slo.yaml": pyrra(indicator)})

    assert sli_expr(rules) == (
        '(sum by (route)(rate(http_requests_total{job="api",code=~"5.."}[5m])))\n/\n'
        '(sum by (route)(rate(http_requests_total{job="api"}[5m])))\n'
    )
    assert "sloth-slo-sli-recordings-shop-api-slo:slo:sli_error:ratio_rate4w" in rules
    labels = rules["sloth-slo-meta-recordings-shop-api-slo:slo:objective:ratio"]["labels"]
    assert labels == {
        "sloth_id": "shop-api-slo",
        "sloth_service": "shop",
        "sloth_slo": "api-slo",
        "team": "payments",
    }
    alert = rules["sloth-slo-alerts-shop-api-slo:ErrorBudgetBurn/page"]
    assert alert["labels"] == {"sloth_severity": "page", "slo": "api-slo"}


def test_pyrra_latency_and_bool_gauge() -> None:
    latency = {
        "latency": {
            "success": {"metric": 'http_request_duration_seconds_bucket{job="api",le="0.5"}'},
            "total": {"metric": 'http_request_duration_seconds_count{job="api"}'},
        }
    }
    assert sli_expr(rules_of({"slo.yaml": pyrra(latency)}), "1h") == (
        '((\nsum(rate(http_request_duration_seconds_count{job="api"}[1h]))\n-\n'
        'sum(rate(http_request_duration_seconds_bucket{job="api",le="0.5"}[1h]))\n))\n/\n'
        '(sum(rate(http_request_duration_seconds_count{job="api"}[1h])))\n'
    )
    gauge = {"bool_gauge": {"metric": 'up{job="api"}'}}
    assert sli_expr(rules_of({"slo.yaml": pyrra(gauge, window="30d")})) == (
        '((\nsum(count_over_time(up{job="api"}[5m]))\n-\nsum(sum_over_time(up{job="api"}[5m]))\n))'
        '\n/\n(sum(count_over_time(up{job="api"}[5m])))\n'
    )


def test_pyrra_disabled_alerting_and_errors() -> None:
    gauge = {"bool_gauge": {"metric": "up"}}
    rules = rules_of({"slo.yaml": pyrra(gauge, alerting={"disabled": True})})
    assert not [key for key in rules if key.startswith("sloth-slo-alerts-")]

    (error,) = errors_of([pyrra(gauge, window="2d")])
    assert (error.slo, error.field) == (None, "spec.window")
    assert "the SLO period 2d is too short" in error.message
    (error,) = errors_of([pyrra({"ratio": None, "bool_gauge": None})])
    assert (error.slo, error.field) == ("api-slo", "spec.indicator")
    (error,) = errors_of([pyrra(gauge, target="100")])
    assert error.field == "spec.target"


CRD: dict[str, Any] = {
    "apiVersion": "sloth.slok.dev/v1",
    "kind": "PrometheusServiceLevel",
    "metadata": {"name": "api-slos", "namespace": "shop", "labels": {"team": "payments"}},
    "spec": {
        "service": "api",
        "labels": {"owner": "payments"},
        "slos": [
            {
                "name": "availability",
                "objective": 99.9,
                "sli": {"events": {"errorQuery": QUERY_BAD, "totalQuery": QUERY_TOTAL}},
                "alerting": {
                    "name": "ApiErrors",
                    "pageAlert": {"labels": {"severity": "critical"}},
                    "ticketAlert": {"disable": True},
                },
            }
        ],
    },
}


def test_sloth_crd_is_read_and_becomes_a_prometheus_rule() -> None:
    outputs = generate_sources(
        {"crd.yaml": yaml.safe_dump(CRD)}, GenerateOptions(format=OutputFormat.OPERATOR)
    )

    (output,) = outputs
    assert output.name == "api.prometheusrule.yaml"
    (document,) = yaml.safe_load_all(output.text)
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    assert document["metadata"] == {
        "name": "api-slos",
        "namespace": "shop",
        "labels": {
            "app.kubernetes.io/component": "SLO",
            "app.kubernetes.io/managed-by": "portal",
            "team": "payments",
        },
    }
    groups = document["spec"]["groups"]
    assert [group["name"] for group in groups] == [
        "sloth-slo-sli-recordings-api-availability",
        "sloth-slo-meta-recordings-api-availability",
        "sloth-slo-alerts-api-availability",
    ]
    (alert,) = groups[2]["rules"]
    assert alert["labels"] == {"sloth_severity": "page", "severity": "critical"}
    info = groups[1]["rules"][-1]["labels"]
    assert (info["sloth_mode"], info["sloth_spec"]) == ("cli-gen-k8s", "sloth.slok.dev/v1")


def test_operator_format_holds_the_same_groups_as_the_rule_file() -> None:
    text = yaml.safe_dump(CRD)
    (plain,) = parsed(generate_sources({"crd.yaml": text}))
    (operator,) = generate_sources(
        {"crd.yaml": text}, GenerateOptions(format=OutputFormat.OPERATOR)
    )

    assert yaml.safe_load(operator.text)["spec"]["groups"] == plain["groups"]


def test_operator_name_of_a_plain_spec_is_a_dns_name() -> None:
    spec = copy.deepcopy(CRD["spec"])
    spec["service"] = "My_Service.v2"
    spec["version"] = "prometheus/v1"
    (output,) = generate_sources(
        {"slo.yaml": yaml.safe_dump(spec)}, GenerateOptions(format=OutputFormat.OPERATOR)
    )
    assert yaml.safe_load(output.text)["metadata"]["name"] == "my-service-v2-slos"
    assert output.name == "My_Service.v2.prometheusrule.yaml"


def test_crd_errors_are_placed_under_spec() -> None:
    crd = copy.deepcopy(CRD)
    crd["spec"]["slos"][0]["objective"] = 100
    (error,) = errors_of([crd])
    assert (error.slo, error.field, error.path) == (
        "availability",
        "objective",
        "$.spec.slos[0].objective",
    )
