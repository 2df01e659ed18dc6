"""Semantic rules on built objects: what they must not report, and the edges of what they do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.review.selectors import matches_selector
from portal.review.semantics import evaluate_manifests
from portal.review.semantics_slo import evaluate_slo, scrape_targets

NS = "shop"


def deployment(
    name: str = "api", labels: dict[str, str] | None = None, **container: Any
) -> dict[str, Any]:
    labels = labels or {"app": name}
    body: dict[str, Any] = {"name": "app", "image": "registry.example.com/shop/api:1.0.0"}
    body.setdefault("ports", [{"name": "http", "containerPort": 8080}])
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [body | container]},
            },
        },
    }


def service(selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "namespace": NS, "labels": {"app": "api"}},
        "spec": {
            "selector": {"app": "api"} if selector is None else selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        }
        | spec,
    }


def monitor(kind: str = "ServiceMonitor", **spec: Any) -> dict[str, Any]:
    endpoints = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": kind,
        "metadata": {"name": "api", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, endpoints: [{"port": "http"}]} | spec,
    }


def rules(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(finding.rule, finding.path) for finding in evaluate_manifests(objects)]


def resources(requests: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    return {"resources": {"requests": requests, "limits": limits}}


# --- requests and limits ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("requests", "limits"),
    [
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "0.5", "memory": "1024Mi"}),  # equal
        ({"cpu": "1"}, {"cpu": 2}),
        ({"memory": "1G"}, {"memory": "1Gi"}),  # 10^9 < 2^30
        ({"cpu": "100m"}, {}),  # no limit: any request
        ({}, {"cpu": "50m"}),  # no request: it defaults to the limit
        ({"cpu": "lots"}, {"cpu": "1"}),  # unreadable: the cost check reports it
    ],
)
def test_requests_within_limits_pass(requests: dict[str, Any], limits: dict[str, Any]) -> None:
    assert rules([deployment(**resources(requests, limits))]) == []


def test_every_resource_above_its_limit_is_reported_in_every_container() -> None:
    obj = deployment(**resources({"memory": "1025Mi"}, {"memory": "1Gi"}))
    init = {"name": "migrate", "image": "m:1"} | resources({"cpu": "2"}, {"cpu": "1500m"})
    obj["spec"]["template"]["spec"]["initContainers"] = [init]

    assert rules([obj]) == [
        ("request-above-limit", "$.spec.template.spec.initContainers[0].resources.requests.cpu"),
        ("request-above-limit", "$.spec.template.spec.containers[0].resources.requests.memory"),
    ]


def test_cronjob_containers_are_found_under_the_job_template() -> None:
    pod = {"containers": [{"name": "c", "image": "c:1"} | resources({"cpu": "2"}, {"cpu": "1"})]}
    cronjob = {
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": NS},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }

    assert rules([cronjob]) == [
        (
            "request-above-limit",
            "$.spec.jobTemplate.spec.template.spec.containers[0].resources.requests.cpu",
        )
    ]


# --- ports --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("probe", "ports", "reported"),
    [
        ({"httpGet": {"port": "http"}}, None, False),
        ({"httpGet": {"port": 8080}}, None, False),
        ({"httpGet": {"port": "8080"}}, None, False),
        ({"tcpSocket": {"port": 9090}}, None, True),
        ({"grpc": {"port": 9090}}, None, True),
        ({"tcpSocket": {"port": "grpc"}}, None, True),
        ({"httpGet": {"port": 9090}}, [], False),  # no ports declared: cannot be judged
        ({"httpGet": {"port": "web", "host": "example.com"}}, None, False),  # another host
        ({"exec": {"command": ["true"]}}, None, False),
    ],
)
def test_probe_ports(probe: dict[str, Any], ports: list[Any] | None, reported: bool) -> None:
    extra: dict[str, Any] = {"livenessProbe": probe}
    if ports is not None:
        extra["ports"] = ports

    found = rules([deployment(**extra)])

    assert found == ([("probe-port", next(iter(found), ("", ""))[1])] if reported else [])
    if reported:
        assert found[0][1].startswith("$.spec.template.spec.containers[0].livenessProbe.")


@pytest.mark.parametrize(
    ("port", "reported"),
    [
        ({"port": 80, "targetPort": "http"}, False),
        ({"port": 80, "targetPort": 8080}, False),
        ({"port": 8080}, False),  # targetPort defaults to port
        ({"port": 80}, True),
        ({"port": 80, "targetPort": 9090}, True),
        ({"port": 80, "targetPort": "metrics"}, True),
    ],
)
def test_service_target_ports(port: dict[str, Any], reported: bool) -> None:
    objects = [deployment(), service(ports=[port])]

    expected = [("service-target-port", "$.spec.ports[0].targetPort")] if reported else []
    assert rules(objects) == expected


def test_a_named_target_port_may_be_on_any_container_of_the_pod() -> None:
    obj = deployment()
    sidecar = {"name": "proxy", "image": "p:1", "ports": [{"name": "web", "containerPort": 80}]}
    obj["spec"]["template"]["spec"]["containers"].append(sidecar)

    assert rules([obj, service(ports=[{"port": 80, "targetPort": "web"}])]) == []


def test_services_without_a_selector_or_external_are_not_matched() -> None:
    assert rules([service(selector={})]) == []
    assert rules([service(type="ExternalName", externalName="db.example.com")]) == []


def test_a_service_matches_pods_of_its_own_namespace_only() -> None:
    other = deployment()
    other["metadata"]["namespace"] = "elsewhere"

    assert rules([other, service()]) == [("service-selects-nothing", "$.spec.selector")]


# --- selectors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "matched"),
    [
        ({}, True),
        (None, False),
        ({"matchLabels": {"app": "api"}}, True),
        ({"matchLabels": {"app": "api", "tier": "web"}}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api", "x"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["api"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Bogus"}]}, False),
    ],
)
def test_label_selectors(selector: object, matched: bool) -> None:
    assert matches_selector(selector, {"app": "api"}) is matched


def test_empty_network_policy_selector_means_every_pod() -> None:
    policy: dict[str, Any] = {
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": NS},
    }
    policy["spec"] = {"podSelector": {}, "policyTypes": ["Ingress"]}

    assert rules([deployment(), policy]) == []


def test_a_pdb_without_selector_selects_nothing() -> None:
    pdb: dict[str, Any] = {
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "api", "namespace": NS},
    }
    pdb["spec"] = {"maxUnavailable": 1}

    assert rules([deployment(), pdb]) == [("pdb-selects-nothing", "$.spec.selector")]


def test_hpa_target_must_match_kind_and_namespace() -> None:
    hpa: dict[str, Any] = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": NS},
    }
    hpa["spec"] = {"scaleTargetRef": {"kind": "StatefulSet", "name": "api"}}

    assert rules([deployment(), hpa]) == [("hpa-target-missing", "$.spec.scaleTargetRef")]
    hpa["spec"]["scaleTargetRef"]["kind"] = "Deployment"
    assert rules([deployment(), hpa]) == []


def test_monitors_looking_outside_the_build_are_not_judged() -> None:
    anywhere = monitor(namespaceSelector={"any": True}, selector={"matchLabels": {"x": "y"}})
    other = monitor(namespaceSelector={"matchNames": ["monitoring"]})
    pods = monitor("PodMonitor", namespaceSelector={"any": True})

    assert rules([deployment(), service(), anywhere, other, pods]) == []


def test_a_servicemonitor_port_is_judged_against_every_service_it_selects() -> None:
    second = service()
    second["metadata"]["name"] = "api-admin"
    second["spec"]["ports"] = [{"name": "admin", "port": 81, "targetPort": "http"}]
    sm = monitor(endpoints=[{"port": "admin"}, {"port": "http"}, {"port": "nope"}])

    assert rules([deployment(), service(), second, sm]) == [
        ("servicemonitor-port", "$.spec.endpoints[2].port")
    ]


# --- the SLO ------------------------------------------------------------------------------


def slo_file(tmp_path: Path, *queries: str) -> Path:
    slos = "".join(
        f"""
  - name: slo-{index}
    objective: 99.0
    sli:
      raw:
        error_ratio_query: {query}
    alerting:
      name: Alert{index}
      page_alert: {{disable: true}}
      ticket_alert: {{disable: true}}
"""
        for index, query in enumerate(queries)
    )
    path = tmp_path / "slo.yaml"
    path.write_text(f"version: prometheus/v1\nservice: api\nslos:{slos}", encoding="utf-8")
    return path


def slo_problems(objects: list[dict[str, Any]], path: Path) -> list[str]:
    findings, _ = evaluate_slo(objects, path)
    return [
        f"{finding.object} {finding.message.split(' reads ')[1].split(' of ')[0]}"
        for finding in findings
    ]


RATIO = "sum(rate({0}[{{{{.window}}}}])) / sum(rate({1}[{{{{.window}}}}]))"


def test_a_scraped_service_satisfies_the_slo(tmp_path: Path) -> None:
    query = RATIO.format('errors_total{job="api"}', 'requests_total{service="api"}')

    assert slo_problems([deployment(), service(), monitor()], slo_file(tmp_path, query)) == []


def test_an_unscraped_service_is_named_once_per_metric(tmp_path: Path) -> None:
    query = RATIO.format('errors_total{job="api"}', 'errors_total{job="api",code="5xx"}')
    other = RATIO.format('up{service=~"ap.*"}', 'up{service=~"ap.*"}')

    found = slo_problems([deployment(), service()], slo_file(tmp_path, query, other))

    assert found == [
        'SLO "slo-0" errors_total{job="api"}',
        'SLO "slo-1" up{service=~"ap.*"}',
    ]


@pytest.mark.parametrize(
    "selector",
    [
        'kube_deployment_status_replicas_available{namespace="shop",service="api"}',
        'job:requests:rate5m{job="api"}',  # a recording rule
        'requests_total{job="other-team"}',  # not a Service of this build
        'requests_total{namespace="shop"}',  # names no job or service
        '{__name__=~"requests_.*",job="api"}',  # the metric is a regex
        'requests_total{job="api",namespace="elsewhere"}',
    ],
)
def test_queries_not_about_this_service_are_left_alone(tmp_path: Path, selector: str) -> None:
    query = RATIO.format(selector, selector)

    assert slo_problems([deployment(), service()], slo_file(tmp_path, query)) == []


def test_a_podmonitor_scrapes_under_its_own_job_name(tmp_path: Path) -> None:
    pods = monitor("PodMonitor")
    by_podmonitor = RATIO.format('errors_total{job="shop/api"}', 'requests_total{job="shop/api"}')
    by_service = RATIO.format('errors_total{service="api"}', 'requests_total{service="api"}')

    assert scrape_targets([deployment(), pods])[0].job == "shop/api"
    assert slo_problems([deployment(), service(), pods], slo_file(tmp_path, by_podmonitor)) == []
    # PodMonitor series carry no service label: a query by service still has no data.
    assert slo_problems([deployment(), service(), pods], slo_file(tmp_path, by_service)) == [
        'SLO "slo-0" errors_total{service="api"}',
        'SLO "slo-0" requests_total{service="api"}',
    ]


def test_a_job_label_renames_the_job(tmp_path: Path) -> None:
    svc = service()
    svc["metadata"]["labels"]["app.kubernetes.io/name"] = "shop-api"
    sm = monitor(jobLabel="app.kubernetes.io/name")
    query = RATIO.format('errors_total{job="shop-api"}', 'requests_total{job="shop-api"}')
    stale = RATIO.format('errors_total{job="api"}', 'requests_total{job="api"}')

    assert slo_problems([deployment(), svc, sm], slo_file(tmp_path, query)) == []
    renamed = evaluate_slo([deployment(), svc, sm], slo_file(tmp_path, stale))[0]
    assert [finding.message.split(", but ")[1] for finding in renamed] == [
        "its series are scraped as job 'shop-api', not that one: the SLO has no data and its "
        "alerts cannot fire"
    ] * 2
    # Without the ServiceMonitor nothing says shop-api is this Service's job: not judged.
    assert slo_problems([deployment(), svc], slo_file(tmp_path, query)) == []


def test_a_missing_or_invalid_slo_is_left_to_the_slo_rules_check(tmp_path: Path) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text("version: prometheus/v1\nslos: 3\n", encoding="utf-8")

    assert evaluate_slo([service()], tmp_path / "none.yaml") == ([], "no SLO")
    assert evaluate_slo([service()], bad) == ([], "slo.yaml not read (see the slo rules check)")
