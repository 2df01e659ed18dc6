"""A service Component's page shows its monthly cost from the estimate of GitOps main."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.config import Settings
from portal.cost.estimate import CostIndex, EnvironmentCost, ServiceCost
from tests.conftest import ADA
from tests.databases import SQLITE_ONLY
from tests.proposals.seed import SERVICE, push_to_main, seed_service

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

COMPONENT = "/catalog/component/default/artist-lookup"


@dataclass
class FakeCostIndexes:
    """A cost runtime answering ``index()`` from a given index (or raising)."""

    services: tuple[ServiceCost, ...] = ()
    error: Exception | None = None
    asked: list[str] = field(default_factory=list)

    def index(self) -> CostIndex:
        self.asked.append("index")
        if self.error is not None:
            raise self.error
        return CostIndex(self.services, "0" * 40)


def service(*environments: EnvironmentCost, name: str = "artist-lookup") -> ServiceCost:
    return ServiceCost(name, "group:default/team-a", environments)


def cost_line(page: str) -> str | None:
    found = re.search(r'<dd id="monthly-cost">(.*?)</dd>', page, re.S)
    return found.group(1) if found else None


def with_costs(client: TestClient, fake: FakeCostIndexes) -> TestClient:
    client.app.state.cost = fake  # type: ignore[attr-defined]
    return client


def test_a_service_component_shows_its_monthly_cost_with_a_link(app_client: TestClient) -> None:
    fake = FakeCostIndexes(
        (
            service(
                EnvironmentCost("dev", monthly=Decimal("6.54226")),
                EnvironmentCost("prod", monthly=Decimal("43.893075")),
            ),
        )
    )

    page = with_costs(app_client, fake).get(COMPONENT)

    assert page.status_code == 200
    line = cost_line(page.text)
    assert line is not None, page.text
    # 6.54226 + 43.893075 = 50.435335, to the cent.
    assert '<a href="/cost/artist-lookup">50.44 USD/month</a>' in line
    assert "estimate from manifests on main" in line
    assert fake.asked == ["index"]


def test_a_component_with_no_service_on_main_shows_nothing(app_client: TestClient) -> None:
    fake = FakeCostIndexes((service(EnvironmentCost("dev", monthly=Decimal(1)), name="other"),))

    page = with_costs(app_client, fake).get(COMPONENT)

    assert page.status_code == 200
    assert "Monthly cost" not in page.text


def test_other_kinds_never_show_a_cost(app_client: TestClient) -> None:
    fake = FakeCostIndexes((service(EnvironmentCost("dev", monthly=Decimal(1)), name="team-a"),))

    page = with_costs(app_client, fake).get("/catalog/group/default/team-a")

    assert page.status_code == 200 and "Monthly cost" not in page.text
    assert fake.asked == []


@pytest.mark.parametrize(
    "fake",
    [FakeCostIndexes(error=RuntimeError("estimate exploded")), None],
    ids=["runtime raises", "no runtime"],
)
def test_a_cost_runtime_that_fails_or_is_missing_shows_nothing(
    app_client: TestClient, fake: FakeCostIndexes | None
) -> None:
    if fake is None:
        del app_client.app.state.cost  # type: ignore[attr-defined]
    else:
        with_costs(app_client, fake)

    page = app_client.get(COMPONENT)

    assert page.status_code == 200
    assert "Monthly cost" not in page.text


@pytest.mark.parametrize(
    ("environments", "problem"),
    [
        (
            (
                EnvironmentCost("dev", monthly=Decimal(5)),
                EnvironmentCost("prod", error="deploy/overlays/prod does not build: boom"),
            ),
            "prod: deploy/overlays/prod does not build: boom",
        ),
        (
            (
                EnvironmentCost("dev", "EUR", monthly=Decimal(5)),
                EnvironmentCost("prod", "USD", monthly=Decimal(7)),
            ),
            "priced in several currencies (EUR, USD)",
        ),
    ],
    ids=["an environment does not build", "two currencies"],
)
def test_a_figure_that_would_be_wrong_is_not_shown(
    app_client: TestClient, environments: tuple[EnvironmentCost, ...], problem: str
) -> None:
    page = with_costs(app_client, FakeCostIndexes((service(*environments),))).get(COMPONENT)

    line = cost_line(page.text)
    assert page.status_code == 200 and line is not None
    assert '<a href="/cost/artist-lookup">not estimated</a>' in line
    assert problem in line
    assert "5.00" not in line and "12.00" not in line


def test_the_real_estimate_of_main_reads_its_price_sheet(
    portal: TestClient, settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "someone"
    seed_service(portal, settings, work)  # air-quality on main with dev and prod overlays
    sheet = "cpu_core_hour: '0.04'\nmemory_gib_hour: '0.005'\n"
    push_to_main(settings, work, {"cost/prices/dev.yaml": sheet}, "Price dev")

    page = portal.get(f"/catalog/component/default/{SERVICE}", headers=ADA)

    # dev at its sheet: (0.25 x 0.04 + 0.25 x 0.005) x 730 = 8.2125; prod at OpenCost's
    # defaults, HPA minimum 3 of 500m and 1Gi: 43.893075. 52.105575 to the cent: 52.11.
    line = cost_line(page.text)
    assert page.status_code == 200 and line is not None, page.text
    assert f'<a href="/cost/{SERVICE}">52.11 USD/month</a>' in line
