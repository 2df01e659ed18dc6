"""The allocation model: OpenCost's prices, max(request, usage), price sheets, rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from portal.cost.model import (
    DEFAULT_PRICES,
    GIB,
    HOURS_PER_MONTH,
    ContainerUsage,
    Prices,
    PriceSheetError,
    allocate,
    cents,
    environment_prices,
    price_sheet_path,
    prices_from_text,
)
from portal.cost.quantity import parse_quantity

SOURCE = "cost/prices/dev.yaml"


def test_defaults_are_opencost_defaults() -> None:
    assert (
        DEFAULT_PRICES.currency,
        DEFAULT_PRICES.cpu_core_hour,
        DEFAULT_PRICES.memory_gib_hour,
        DEFAULT_PRICES.gpu_hour,
        DEFAULT_PRICES.storage_gib_hour,
    ) == (
        "USD",
        Decimal("0.031611"),
        Decimal("0.004237"),
        Decimal("0.95"),
        Decimal("0.00005479452"),
    )


def test_worked_check_one_more_replica_costs_14_63_a_month() -> None:
    replica = ContainerUsage(
        hours=HOURS_PER_MONTH,
        cpu_request_cores=parse_quantity("500m"),
        memory_request_bytes=parse_quantity("1Gi"),
    )

    cost = allocate(replica).total

    assert cost == Decimal("14.631025")  # (0.5 x 0.031611 + 1 x 0.004237) x 730, exact
    assert cents(cost) == Decimal("14.63")
    assert cost.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) == Decimal("14.63")


def test_cents_round_half_up() -> None:
    assert cents(Decimal("0.125")) == Decimal("0.13")
    assert cents(Decimal("0.135")) == Decimal("0.14")
    assert cents(Decimal("0.1249")) == Decimal("0.12")


@pytest.mark.parametrize(
    ("request_cores", "usage_cores", "charged"),
    [
        ("0.5", "0.2", "0.5"),  # idle: the reservation is charged
        ("0.25", "1", "1"),  # bursting: the usage is charged
        ("0.5", None, "0.5"),  # not measured: the request alone
    ],
)
def test_cpu_is_charged_at_max_of_request_and_usage(
    request_cores: str, usage_cores: str | None, charged: str
) -> None:
    usage = None if usage_cores is None else Decimal(usage_cores)
    container = ContainerUsage(
        hours=Decimal(10), cpu_request_cores=Decimal(request_cores), cpu_usage_cores=usage
    )

    allocation = allocate(container)

    assert allocation.cpu_core_hours == Decimal(charged) * 10
    assert allocation.cpu_cost == Decimal(charged) * 10 * DEFAULT_PRICES.cpu_core_hour
    assert allocation.total == allocation.cpu_cost


def test_memory_is_charged_at_max_of_request_and_usage() -> None:
    idle = ContainerUsage(hours=Decimal(1), memory_request_bytes=2 * GIB, memory_usage_bytes=GIB)
    bursting = ContainerUsage(
        hours=Decimal(1), memory_request_bytes=GIB, memory_usage_bytes=3 * GIB
    )

    assert allocate(idle).memory_gib_hours == 2
    assert allocate(bursting).memory_gib_hours == 3
    assert allocate(bursting).memory_cost == 3 * DEFAULT_PRICES.memory_gib_hour


def test_gpu_and_storage_are_priced() -> None:
    container = ContainerUsage(hours=Decimal(100), gpus=Decimal(1), pv_bytes=10 * GIB)
    prices = Prices(gpu_hour=Decimal(2), storage_gib_hour=Decimal("0.001"))

    allocation = allocate(container, prices)

    assert (allocation.gpu_hours, allocation.pv_gib_hours) == (Decimal(100), Decimal(1000))
    assert (allocation.gpu_cost, allocation.pv_cost) == (Decimal(200), Decimal(1))
    assert allocation.total == Decimal(201)


def test_negative_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="hours"):
        allocate(ContainerUsage(hours=Decimal(-1)))


def test_price_sheet_overrides_only_what_it_sets() -> None:
    prices = prices_from_text("currency: EUR\ncpu_core_hour: '0.04'\ngpu_hour: 2\n", SOURCE)

    assert prices == Prices(
        currency="EUR",
        cpu_core_hour=Decimal("0.04"),
        memory_gib_hour=DEFAULT_PRICES.memory_gib_hour,
        gpu_hour=Decimal(2),
        storage_gib_hour=DEFAULT_PRICES.storage_gib_hour,
    )


def test_price_sheet_override_changes_the_cost() -> None:
    prices = prices_from_text("cpu_core_hour: 0.1\n", SOURCE)

    assert allocate(
        ContainerUsage(hours=Decimal(10), cpu_request_cores=Decimal(1)), prices
    ).total == (Decimal("1.0"))


@pytest.mark.parametrize("text", ["", "# nothing set\n", "---\n"])
def test_empty_price_sheet_means_defaults(text: str) -> None:
    assert prices_from_text(text, SOURCE) == DEFAULT_PRICES


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("cpu_core_hour: 0.04\ngpu_hour: lots\n", f"{SOURCE}:2: gpu_hour: must be a number"),
        ("memory_gib_hour: -1\n", f"{SOURCE}:1: memory_gib_hour: must be a finite number >= 0"),
        ("\nstorage_gib_hour: .nan\n", f"{SOURCE}:2: storage_gib_hour: must be a finite"),
        ("gpu_hour: true\n", f"{SOURCE}:1: gpu_hour: must be a number"),
        ("cpu_hour: 0.04\n", f"{SOURCE}:1: cpu_hour: unknown price"),
        ("currency: 3\n", f"{SOURCE}:1: currency: must be a currency code"),
        ("gpu_hour: 1\ngpu_hour: 2\n", f"{SOURCE}:2: gpu_hour: given twice"),
        ("- 1\n", f"{SOURCE}:1: a price sheet maps price names"),
        ("gpu_hour: [\n", f"{SOURCE}:2: not valid YAML"),
        ("gpu_hour: 1\n---\ngpu_hour: 2\n", f"{SOURCE}:3: one document only"),
        ("a: &a [1]\nb: *a\n", f"{SOURCE}: not valid YAML"),
    ],
)
def test_price_sheet_errors_name_file_line_and_field(text: str, error: str) -> None:
    with pytest.raises(PriceSheetError) as raised:
        prices_from_text(text, SOURCE)

    assert str(raised.value).startswith(error), str(raised.value)


def test_oversized_price_sheet_is_refused() -> None:
    with pytest.raises(PriceSheetError, match="larger than"):
        prices_from_text("# x\n" * 20_000, SOURCE)


def test_price_sheet_path_is_per_cluster_outside_flux_paths() -> None:
    # Flux applies ./clusters/<env> and the overlays: a sheet under either would be taken
    # for a Kubernetes object and fail the cluster's reconciliation.
    assert price_sheet_path("prod") == "cost/prices/prod.yaml"
    assert not price_sheet_path("prod").startswith(("clusters/", "services/", "infrastructure/"))
    for bad in ("", "../prod", ".git"):
        with pytest.raises(ValueError, match="environment"):
            price_sheet_path(bad)


def test_environment_prices_read_the_environments_sheet_or_default() -> None:
    asked: list[str] = []

    def read(path: str) -> bytes | None:
        asked.append(path)
        return b"cpu_core_hour: '0.05'\n" if path == "cost/prices/prod.yaml" else None

    assert environment_prices("prod", read).cpu_core_hour == Decimal("0.05")
    assert environment_prices("dev", read) == DEFAULT_PRICES
    assert asked == ["cost/prices/prod.yaml", "cost/prices/dev.yaml"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"cpu_core_hour: 1\ngpu_hour: x\n", "cost/prices/dev.yaml:2: gpu_hour: must be a number"),
        (b"gpu_hour: \xff\n", "cost/prices/dev.yaml: not UTF-8 text"),
    ],
)
def test_a_bad_environment_sheet_is_an_error_never_the_defaults(data: bytes, error: str) -> None:
    with pytest.raises(PriceSheetError) as raised:
        environment_prices("dev", lambda _path: data)

    assert str(raised.value).startswith(error), str(raised.value)
