"""The monthly cost a catalog entity page shows: the estimate of main for one service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from portal.cost.estimate import SOURCE as ESTIMATE_SOURCE
from portal.cost.estimate import CostIndex
from portal.cost.model import cents

logger = logging.getLogger(__name__)


class CostIndexes(Protocol):
    """What the entity page reads of the app's cost runtime: the estimate of main."""

    def index(self) -> CostIndex:
        """Return the estimate of main (cached)."""
        ...


@dataclass(frozen=True)
class MonthlyCost:
    """A service's monthly estimate for its entity page, or why it has no figure."""

    service: str
    amount: Decimal | None
    currency: str = ""
    problem: str = ""
    source: str = ESTIMATE_SOURCE


def entity_monthly_cost(
    runtime: CostIndexes | None, kind: str, namespace: str, name: str
) -> MonthlyCost | None:
    """Return a Component's monthly cost from the estimate of main; None when it has none.

    A Component is a service when a folder of its name is on GitOps main (the catalog's
    ``default`` namespace only, as the cost pages match owners). The entity page never
    fails for its cost line: no runtime, or one that raises, shows nothing.
    """
    if kind != "component" or namespace != "default" or runtime is None:
        return None
    try:
        index = runtime.index()
    except Exception:  # a broken cost runtime must not take the catalog page down
        logger.exception("cost estimate unavailable for %s", name)
        return None
    found = next((s for s in index.services if s.service == name), None)
    if found is None:
        return None
    if found.errors:  # a partial sum would be a wrong number: say why there is none
        return MonthlyCost(found.service, None, problem="; ".join(found.errors))
    currencies = sorted({environment.currency for environment in found.environments})
    if len(currencies) != 1:
        problem = f"priced in several currencies ({', '.join(currencies)})"
        return MonthlyCost(found.service, None, problem=problem)
    return MonthlyCost(found.service, cents(found.monthly), currencies[0])
