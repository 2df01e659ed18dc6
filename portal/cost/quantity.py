"""Kubernetes resource quantities (``250m``, ``512Mi``, ``1e3``) read exactly, as Decimals.

Floats would turn ``0.1`` CPU into ``0.1000000000000000055...`` and a cost into a figure
that differs from a hand computation in the last cent; Decimals keep the arithmetic exact.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))(?P<suffix>[KMGTPE]i|[eE][+-]?\d+|[numkMGTPE])?$"
)
_SUFFIX = {
    **{f"{unit}i": Decimal(1024) ** power for power, unit in enumerate("KMGTPE", start=1)},
    **{unit: Decimal(1000) ** power for power, unit in enumerate("kMGTPE", start=1)},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


def parse_quantity(value: object) -> Decimal:
    """Parse a Kubernetes quantity (``250m``, ``0.5``, ``512Mi``, ``1G``, ``1e3``) exactly."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"invalid quantity {value!r}")
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"invalid quantity {value!r}")
    number, suffix = Decimal(match["number"]), match["suffix"]
    if not suffix:
        return number
    if suffix[0] in "eE" and len(suffix) > 1:
        try:
            return number.scaleb(int(suffix[1:]))
        except InvalidOperation as error:
            raise ValueError(f"invalid quantity {value!r}") from error
    return number * _SUFFIX[suffix]
