"""Monthly cost estimate from manifests: quantities, replicas, price sheet, breakdown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from portal.cost.manifests import (
    estimate_monthly_cost,
    pod_requests,
)
from portal.cost.model import Prices
from portal.cost.quantity import parse_quantity

SHEET = Prices(
    currency="EUR",
    cpu_core_hour=Decimal("0.04"),
    memory_gib_hour=Decimal("0.005"),
    gpu_hour=Decimal("2.00"),
)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("250m", Decimal("0.25")),
        ("0.5", Decimal("0.5")),
        (0.5, Decimal("0.5")),
        (2, Decimal(2)),
        ("1", Decimal(1)),
        ("512Mi", Decimal(512 * 2**20)),
        ("1Gi", Decimal(2**30)),
        ("1.5Gi", Decimal(1610612736)),
        ("1G", Decimal(10**9)),
        ("128974848", Decimal(128974848)),
        ("100k", Decimal(100_000)),
        ("1e3", Decimal(1000)),
        ("1E", Decimal(10**18)),  # E alone is exa, not an exponent
        ("10u", Decimal("0.00001")),
        ("500n", Decimal("0.0000005")),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_quantity(quantity: object, expected: Decimal) -> None:
    assert parse_quantity(quantity) == expected


@pytest.mark.parametrize("quantity", ["", "abc", "1 Gi", "1Gb", "1gi", "--1", True, None, [1]])
def test_parse_quantity_refuses_garbage(quantity: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(quantity)


def container(name: str, **resources: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "image": f"{name}:1", "resources": resources}


def workload(kind: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": containers}
    if "initContainers" in spec:
        pod["initContainers"] = spec.pop("initContainers")
    body = {"template": {"spec": pod}, **spec}
    if kind == "CronJob":
        body = {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"spec": pod}}}}
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": body,
    }


def hpa(target: str, minimum: int | None, maximum: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "maxReplicas": maximum,
    }
    if minimum is not None:
        spec["minReplicas"] = minimum
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target, "namespace": "shop"},
        "spec": spec,
    }


def shop() -> list[dict[str, Any]]:
    api = workload(
        "Deployment",
        "api",
        [
            container(
                "app",
                requests={"cpu": "250m", "memory": "512Mi"},
                limits={"cpu": "1", "memory": "1Gi"},
            ),
            # only limits: Kubernetes sets the requests to them
            container("proxy", limits={"cpu": "250m", "memory": "512Mi"}),
        ],
    )
    db = workload(
        "StatefulSet",
        "db",
        [container("postgres", requests={"cpu": "1", "memory": "2Gi"})],
        replicas=3,
        initContainers=[container("restore", requests={"cpu": "1500m", "memory": "1Gi"})],
    )
    trainer = workload(
        "Deployment",
        "trainer",
        [container("train", requests={"cpu": 2, "memory": "8Gi"}, limits={"nvidia.com/gpu": 1})],
        replicas=1,
    )
    report = workload("CronJob", "report", [container("report", requests={"cpu": "4"})])
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {}}
    return [api, db, trainer, report, service, hpa("api", 2, 6)]


def test_estimate_by_hand() -> None:
    estimate = estimate_monthly_cost(shop(), SHEET)

    lines = {line.object: line for line in estimate.lines}
    assert list(lines) == ["Deployment/shop/api", "StatefulSet/shop/db", "Deployment/shop/trainer"]
    # api: HPA minReplicas 2; per replica 0.25 + 0.25 core and 512Mi + 512Mi = 1 GiB:
    #   0.5 x 0.04 + 1 x 0.005 = 0.025 per hour; x 2 replicas x 730 h = 36.50 (max 6: 109.50)
    api = lines["Deployment/shop/api"]
    assert (api.replicas, api.max_replicas, api.note) == (2, 6, "HPA 2-6")
    assert (api.cpu_cores, api.memory_gib) == (Decimal("0.5"), Decimal(1))
    assert (api.monthly, api.max_monthly) == (Decimal("36.50"), Decimal("109.50"))
    # db: 3 replicas; the restore init container (1.5 core) outweighs postgres (1 core), memory
    # is postgres' 2 GiB: 1.5 x 0.04 + 2 x 0.005 = 0.07 per hour; x 3 x 730 = 153.30
    db = lines["StatefulSet/shop/db"]
    assert (db.replicas, db.cpu_cores, db.memory_gib) == (3, Decimal("1.5"), Decimal(2))
    assert db.monthly == Decimal("153.30")
    # trainer: 2 x 0.04 + 8 x 0.005 + 1 GPU x 2.00 = 2.12 per hour; x 730 = 1547.60
    assert lines["Deployment/shop/trainer"].gpus == Decimal(1)
    assert lines["Deployment/shop/trainer"].monthly == Decimal("1547.60")
    assert estimate.total == Decimal("1737.40")
    assert estimate.max_total == Decimal("1810.40")  # 109.50 + 153.30 + 1547.60
    assert estimate.currency == "EUR"
    assert estimate.not_estimated == [
        "CronJob/shop/report: runs to completion, for an unknown time"
    ]


def test_breakdown_is_readable() -> None:
    text = estimate_monthly_cost(shop(), SHEET).breakdown()

    assert text.splitlines() == [
        "Deployment/shop/api: 2 x (0.5 CPU, 1 GiB) = 36.50 EUR/month (HPA 2-6)",
        "StatefulSet/shop/db: 3 x (1.5 CPU, 2 GiB) = 153.30 EUR/month",
        "Deployment/shop/trainer: 1 x (2 CPU, 8 GiB, 1 GPU) = 1547.60 EUR/month",
        "Total: 1737.40 EUR/month (up to 1810.40 at autoscaler maximum)",
        "Not estimated: CronJob/shop/report: runs to completion, for an unknown time",
    ]


def test_replicas_default_to_one_and_hpa_minimum_defaults_to_one() -> None:
    one = {"requests": {"cpu": "1", "memory": "1Gi"}}
    plain = workload("Deployment", "plain", [container("c", **one)])
    scaled = workload("Deployment", "scaled", [container("c", **one)], replicas=4)
    daemon = workload("DaemonSet", "agent", [container("c", **one)])

    estimate = estimate_monthly_cost([plain, scaled, daemon, hpa("scaled", None, 5)], SHEET)

    replicas = {
        line.object: (line.replicas, line.max_replicas, line.note) for line in estimate.lines
    }
    assert replicas == {
        "Deployment/shop/plain": (1, 1, ""),
        # under an HPA its own replicas (4) do not count: Flux would not keep them anyway
        "Deployment/shop/scaled": (1, 5, "HPA 1-5"),
        "DaemonSet/shop/agent": (1, 1, "per node"),
    }


def test_native_sidecars_add_up_and_plain_init_containers_peak() -> None:
    pod = {
        "initContainers": [
            {"name": "mesh", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
            {"name": "migrate", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
        ],
        "containers": [{"name": "app", "resources": {"requests": {"cpu": "200m"}}}],
    }

    requests = pod_requests(pod)

    assert requests["cpu"] == Decimal("0.3")  # sidecar 0.1 + app 0.2 outweighs migrate 0.25
    assert requests["memory"] == Decimal(64 * 2**20)  # only migrate asks for memory


def test_a_bad_quantity_skips_that_workload_only() -> None:
    broken = workload("Deployment", "broken", [container("c", requests={"cpu": "lots"})])
    fine = workload("Deployment", "fine", [container("c", requests={"cpu": "1"})])

    estimate = estimate_monthly_cost([broken, fine], SHEET)

    assert [line.object for line in estimate.lines] == ["Deployment/shop/fine"]
    assert estimate.total == Decimal("29.20")  # 1 x 0.04 x 730
    assert estimate.errors == ["Deployment/shop/broken: invalid quantity 'lots'"]
    assert estimate.not_estimated == []


def test_price_sheet_defaults_are_opencost_list_prices() -> None:
    sheet = Prices()

    assert (sheet.currency, sheet.cpu_core_hour, sheet.memory_gib_hour, sheet.gpu_hour) == (
        "USD",
        Decimal("0.031611"),
        Decimal("0.004237"),
        Decimal("0.95"),
    )
