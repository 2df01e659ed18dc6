"""Right-sizing: p95 + 20% headroom, steps, floor, thresholds, hand-computed savings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from portal.cost.model import DEFAULT_PRICES, Prices, cents
from portal.cost.rightsizing import (
    MIB,
    DeployedContainer,
    Policy,
    advise,
    cpu_quantity,
    deployed_containers,
    memory_quantity,
    recommend,
    round_up,
)
from portal.integrations.cost_metrics import ContainerUsage, Workload

GI = Decimal(2**30)


def m(millicores: str) -> Decimal:
    return Decimal(millicores) / 1000


CPU_500M, CPU_58M = m("500"), m("58")


def deployed(
    environment: str = "prod",
    cpu: Decimal | None = CPU_500M,
    memory: Decimal | None = GI,
    replicas: int = 3,
    container: str = "app",
    name: str = "air-quality",
) -> DeployedContainer:
    return DeployedContainer(
        environment, "air-quality", "Deployment", name, container, cpu, memory, replicas, ""
    )


def usage(
    environment: str = "prod",
    cpu: Decimal | None = CPU_58M,
    memory: Decimal | None = 150 * MIB,
    container: str = "app",
    namespace: str = "air-quality",
) -> ContainerUsage:
    return ContainerUsage(
        Workload(environment, namespace, "air-quality"), container, None, cpu, None, memory
    )


PRICES = {"prod": DEFAULT_PRICES, "dev": DEFAULT_PRICES}


def test_the_worked_example_matches_the_hand_computation() -> None:
    (rec,) = recommend([deployed()], [usage()], PRICES)
    assert rec.proposed
    assert rec.cpu is not None and rec.memory is not None
    # CPU: 58m x 1.2 = 69.6m, up to the 10m step: 70m. Saving 0.43 cores x 3 replicas x
    # 730 h x 0.031611 = 941.7 core-hours x 0.031611 = 29.7680787.
    assert rec.cpu.recommended == m("70")
    assert rec.cpu.monthly_saving == Decimal("29.7680787")
    # Memory: 150Mi x 1.2 = 180Mi exactly. Saving (1024 - 180)Mi = 0.82421875 GiB x 3 x 730
    # x 0.004237 = 1805.0390625 GiB-hours x 0.004237 = 7.6479505078125.
    assert rec.memory.recommended == 180 * MIB
    assert rec.memory.monthly_saving == Decimal("7.6479505078125")
    assert cents(rec.monthly_saving) == Decimal("37.42")
    assert rec.cpu.reason == "p95 58m + 20% headroom = 70m, request 500m"


def test_rounding_is_up_to_10m_and_1mi_never_below_the_floor() -> None:
    assert round_up(m("69.6"), m("10")) == m("70")
    assert round_up(m("70"), m("10")) == m("70")
    assert cpu_quantity(m("70")) == "70m"
    assert memory_quantity(Decimal(180) * MIB) == "180Mi"
    assert memory_quantity(Decimal(180) * MIB + 1) == "181Mi"
    low = advise("cpu", m("500"), m("2"), 1, DEFAULT_PRICES)
    assert low.recommended == m("10")  # 2.4m would round to 10m; the floor is 10m too
    tiny_memory = advise("memory", GI, 10 * MIB, 1, DEFAULT_PRICES)
    assert tiny_memory.recommended == 32 * MIB  # 12Mi is below the 32Mi floor
    step = advise("memory", GI, Decimal(100_000_000), 1, DEFAULT_PRICES)
    # 100 MB x 1.2 = 120,000,000 bytes = 114.44Mi: up to 115Mi
    assert step.recommended == 115 * MIB


@pytest.mark.parametrize(
    ("current", "p95", "expected"),
    [
        (m("100"), m("80"), "already lean"),  # 96m -> 100m, not below the request
        (m("105"), m("76"), "lowers it by less than 10%"),  # 91.2m -> 100m: -4.8%
    ],
)
def test_small_moves_are_not_proposed(current: Decimal, p95: Decimal, expected: str) -> None:
    advice = advise("cpu", current, p95, 3, DEFAULT_PRICES)
    assert advice.recommended is None
    assert advice.monthly_saving == 0
    assert expected in advice.reason


def test_exactly_ten_percent_is_proposed() -> None:
    advice = advise("cpu", m("100"), m("75"), 1, DEFAULT_PRICES)  # 90m: -10%
    assert advice.recommended == m("90")


def test_a_saving_under_a_cent_a_month_is_not_proposed() -> None:
    cheap = Prices(memory_gib_hour=Decimal("0.001"))
    # 40Mi -> 32Mi (floor): 8Mi = 0.0078125 GiB x 730 h x 0.001 = 0.0057 < 0.01
    advice = advise("memory", 40 * MIB, 20 * MIB, 1, cheap)
    assert advice.recommended is None
    assert "saves less than 0.01 USD/month" in advice.reason


def test_headroom_is_a_policy() -> None:
    advice = advise("cpu", m("500"), m("100"), 1, DEFAULT_PRICES, Policy(headroom=Decimal("0.5")))
    assert advice.recommended == m("150")


def test_no_usage_data_gives_no_recommendation_with_the_reason() -> None:
    (rec,) = recommend([deployed()], [], PRICES)
    assert not rec.proposed
    assert rec.reason == "no usage data over the last 14 days"
    (partial,) = recommend([deployed()], [usage(cpu=None)], PRICES)
    assert partial.cpu is not None and partial.memory is not None
    assert partial.cpu.recommended is None
    assert partial.cpu.reason == "no CPU usage data over the last 14 days"
    assert partial.memory.recommended == 180 * MIB  # memory is still advised
    assert partial.monthly_saving == partial.memory.monthly_saving


def test_no_request_on_main_is_nothing_to_lower() -> None:
    (rec,) = recommend([deployed(cpu=None)], [usage()], PRICES)
    assert rec.cpu is not None
    assert rec.cpu.recommended is None
    assert rec.cpu.reason == "no CPU request on main: nothing to lower"


def test_usage_is_matched_by_environment_and_container() -> None:
    recs = recommend(
        [deployed("dev", replicas=1), deployed("prod")],
        [usage("prod"), usage("dev", cpu=m("400"), memory=900 * MIB)],
        PRICES,
    )
    by_env = {rec.environment: rec for rec in recs}
    assert not by_env["dev"].proposed  # 480m / 1080Mi: nothing to lower
    assert by_env["prod"].proposed


def test_the_busiest_series_decides_when_a_container_has_several() -> None:
    (rec,) = recommend(
        [deployed()], [usage(cpu=m("58")), usage(cpu=m("158"), namespace="")], PRICES
    )
    assert rec.cpu is not None and rec.cpu.recommended == m("190")  # 158 x 1.2 = 189.6


def test_a_series_of_another_namespace_is_not_this_container() -> None:
    (rec,) = recommend(
        [deployed()], [usage(cpu=m("58")), usage(cpu=m("158"), namespace="other")], PRICES
    )
    assert rec.cpu is not None and rec.cpu.recommended == m("70")


def test_containers_that_cannot_be_told_apart_get_no_advice() -> None:
    recs = recommend([deployed(name="api"), deployed(name="worker")], [usage()], PRICES)
    assert all(not rec.proposed for rec in recs)
    assert all("cannot be told apart" in (rec.reason or "") for rec in recs)


def test_measured_containers_not_on_main_are_listed_and_environments_without_prices() -> None:
    recs = recommend([deployed()], [usage(), usage(container="sidecar")], {})
    reasons = {rec.container: rec.reason for rec in recs}
    assert reasons["app"] == "no prices for prod"
    assert reasons["sidecar"] is not None and "not in the manifests on main" in reasons["sidecar"]


def deployment(name: str, resources: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "aq"},
        "spec": {
            **spec,
            "template": {"spec": {"containers": [{"name": "app", "resources": resources}]}},
        },
    }


def test_containers_are_read_from_built_manifests_with_hpa_minimum_replicas() -> None:
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api", "namespace": "aq"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "api"},
            "minReplicas": 3,
            "maxReplicas": 9,
        },
    }
    objects = [
        deployment("api", {"requests": {"cpu": "250m", "memory": "256Mi"}}, replicas=5),
        deployment("limits-only", {"limits": {"cpu": "1", "memory": "1Gi"}}, replicas=2),
        deployment("bare", {}),
        deployment("broken", {"requests": {"cpu": "lots"}}),
        {"kind": "Job", "metadata": {"name": "once"}, "spec": {"template": {"spec": {}}}},
        hpa,
    ]
    found, problems = deployed_containers(objects, "prod")
    by_name = {item.name: item for item in found}
    assert set(by_name) == {"api", "limits-only", "bare"}
    assert by_name["api"].replicas == 3  # the HPA's minimum, not spec.replicas
    assert by_name["api"].replicas_note == "HPA minimum 3"
    assert by_name["api"].cpu_request_cores == m("250")
    assert by_name["api"].memory_request_bytes == 256 * MIB
    assert by_name["limits-only"].cpu_request_cores == 1  # Kubernetes: request = limit
    assert by_name["limits-only"].replicas == 2
    assert by_name["bare"].cpu_request_cores is None
    assert by_name["bare"].replicas == 1
    assert problems == ["prod: Deployment/broken: invalid quantity 'lots'"]
