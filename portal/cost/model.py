"""OpenCost's allocation model: prices, a per-cluster price sheet, and a container's cost.

A container is charged for what it holds, not only what it uses: per resource, the larger
of its request and its usage (``max(request, usage)``), over the hours it ran, at the
cluster's price. CPU in core-hours, memory in GiB-hours, GPUs in GPU-hours and persistent
volumes in GiB-hours. Default prices are OpenCost's defaults (USD); a cluster's price sheet
(``cost/prices/<env>.yaml`` in the GitOps repository) overrides any of them.

Price sheets live at the top of the GitOps repository, outside every folder Flux applies:
each cluster's root Kustomization applies ``./clusters/<env>`` with no kustomization.yaml
there, so kustomize-controller would take any YAML file under it (a price sheet under
``clusters/<env>/`` included) for a Kubernetes object and fail the whole reconciliation.

Amounts stay exact Decimals until shown: ``cents`` rounds half-up (the worked check of
+14.631025 reads 14.63 under either half-up or half-even; they part only on an exact
half-cent, where half-up is what an invoice does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from portal.yaml_source import YamlStream

HOURS_PER_MONTH = Decimal(730)  # 365 days x 24 h / 12: the month of cloud price lists
GIB = Decimal(2**30)
CENT = Decimal("0.01")
MAX_PRICE_FILE_BYTES = 64 * 1024  # a price sheet is a handful of lines


PRICES_DIR = "cost/prices"  # outside Flux's paths: see the module's docstring


def price_sheet_path(environment: str) -> str:
    """Where a cluster's price sheet lives in the GitOps repository."""
    if not environment or "/" in environment or environment.startswith("."):
        raise ValueError(f"not an environment name: {environment!r}")
    return f"{PRICES_DIR}/{environment}.yaml"


class PriceSheetError(ValueError):
    """A price sheet that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class Prices:
    """Unit prices of one cluster: per core-hour, GiB-hour, GPU-hour and PV GiB-hour."""

    currency: str = "USD"
    cpu_core_hour: Decimal = Decimal("0.031611")
    memory_gib_hour: Decimal = Decimal("0.004237")
    gpu_hour: Decimal = Decimal("0.95")
    storage_gib_hour: Decimal = Decimal("0.00005479452")


DEFAULT_PRICES = Prices()
_PRICE_FIELDS = tuple(f.name for f in fields(Prices) if f.name != "currency")


def read_price(value: object) -> Decimal:
    """Read one price: a non-negative finite number (a quoted string keeps every digit)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"must be a number, not {value!r}")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"must be a number, not {value!r}") from error
    if not price.is_finite() or price < 0:
        raise ValueError(f"must be a finite number >= 0, not {value!r}")
    return price


def prices_from_text(text: str, source: str, base: Prices = DEFAULT_PRICES) -> Prices:
    """Read a price sheet's YAML ``text``; keys it sets override ``base``.

    ``source`` (the file's path in the repository) starts every error, with the line and
    the field: ``cost/prices/dev.yaml:3: gpu_hour: must be a number``.
    """
    if len(text.encode()) > MAX_PRICE_FILE_BYTES:
        raise PriceSheetError(f"{source}: larger than {MAX_PRICE_FILE_BYTES} bytes")
    stream = YamlStream(text, max_aliases=0, max_nodes=1000)
    documents = list(stream)
    if stream.problem is not None:
        where = f":{stream.problem.line}" if stream.problem.line else ""
        raise PriceSheetError(f"{source}{where}: not valid YAML: {stream.problem.reason}")
    if len(documents) > 1:
        raise PriceSheetError(f"{source}:{documents[1].line}: one document only")
    if not documents or documents[0].data is None:
        return base
    document = documents[0]
    if not isinstance(document.data, dict):
        raise PriceSheetError(
            f"{source}:{document.line}: a price sheet maps price names to numbers"
        )
    for key, line in stream.duplicates:
        raise PriceSheetError(f"{source}:{line}: {key}: given twice")
    changes: dict[str, object] = {}
    for key, value in document.data.items():
        line = document.line_of([str(key)])
        if key == "currency":
            if not isinstance(value, str) or not value.strip():
                raise PriceSheetError(f"{source}:{line}: currency: must be a currency code")
            changes["currency"] = value.strip()
        elif key in _PRICE_FIELDS:
            try:
                changes[key] = read_price(value)
            except ValueError as error:
                raise PriceSheetError(f"{source}:{line}: {key}: {error}") from error
        else:
            known = ", ".join(("currency", *_PRICE_FIELDS))
            raise PriceSheetError(f"{source}:{line}: {key}: unknown price (known: {known})")
    return replace(base, **changes)  # type: ignore[arg-type]


def environment_prices(environment: str, read: Callable[[str], bytes | None]) -> Prices:
    """Return an environment's prices: its price sheet over the defaults.

    ``read`` returns a file of the GitOps repository at the commit priced (None when it has
    no such file): no sheet means OpenCost's default prices; a sheet that cannot be used
    raises ``PriceSheetError`` naming the file and line, never a silent default.
    """
    path = price_sheet_path(environment)
    data = read(path)
    if data is None:
        return DEFAULT_PRICES
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PriceSheetError(f"{path}: not UTF-8 text ({error.reason})") from error
    return prices_from_text(text, path)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """What one container held and used over ``hours``: averages in cores, bytes, GPUs.

    ``*_usage`` of None means "not measured": the request alone is charged.
    """

    hours: Decimal
    cpu_request_cores: Decimal = Decimal(0)
    cpu_usage_cores: Decimal | None = None
    memory_request_bytes: Decimal = Decimal(0)
    memory_usage_bytes: Decimal | None = None
    gpus: Decimal = Decimal(0)
    pv_bytes: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Allocation:
    """The cost of one container over its hours, per resource and in total (exact)."""

    cpu_core_hours: Decimal
    memory_gib_hours: Decimal
    gpu_hours: Decimal
    pv_gib_hours: Decimal
    cpu_cost: Decimal
    memory_cost: Decimal
    gpu_cost: Decimal
    pv_cost: Decimal

    @property
    def total(self) -> Decimal:
        """The sum of the resources' costs."""
        return self.cpu_cost + self.memory_cost + self.gpu_cost + self.pv_cost


def _held(request: Decimal, usage: Decimal | None) -> Decimal:
    # OpenCost charges the larger: a request is reserved even when idle, and usage beyond
    # the request (bursting up to the limit) is consumed all the same.
    return request if usage is None else max(request, usage)


def allocate(container: ContainerUsage, prices: Prices = DEFAULT_PRICES) -> Allocation:
    """Price one container by OpenCost's rule: ``max(request, usage)`` x hours x price."""
    if container.hours < 0:
        raise ValueError(f"hours must be >= 0, not {container.hours}")
    cpu = _held(container.cpu_request_cores, container.cpu_usage_cores) * container.hours
    memory = (
        _held(container.memory_request_bytes, container.memory_usage_bytes) / GIB * container.hours
    )
    gpu = container.gpus * container.hours
    pv = container.pv_bytes / GIB * container.hours
    return Allocation(
        cpu_core_hours=cpu,
        memory_gib_hours=memory,
        gpu_hours=gpu,
        pv_gib_hours=pv,
        cpu_cost=cpu * prices.cpu_core_hour,
        memory_cost=memory * prices.memory_gib_hour,
        gpu_cost=gpu * prices.gpu_hour,
        pv_cost=pv * prices.storage_gib_hour,
    )


def cents(amount: Decimal) -> Decimal:
    """Round an amount to cents, half-up (see the module's note on the worked check)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)
