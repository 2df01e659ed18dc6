"""The Models pages in Chromium, on a real MLflow: the list, a model's chart, a promotion.

A real portal (uvicorn), a real MLflow server (``make tools``) holding three versions of
the test service's model with their holdout metrics, and the service on the GitOps main
naming that model in its catalog-info.yaml. A member of the owning team opens the list,
follows the model, sees the versions and the chart drawn, and proposes a promotion with
the form; the review page of the change opens.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

import tests.models.promote_support as support
from portal.app import create_app
from tests.browser_server import initialised_settings, live_server, sign_in
from tests.integrations.mlflow_support import Rest
from tests.proposals.seed import SERVICE

pytestmark = [pytest.mark.browser, pytest.mark.integration]

MODEL = f"{SERVICE}-model-{uuid.uuid4().hex[:8]}"  # the MLflow server is shared
MAE = [0.31, 0.27, 0.29]


@pytest.fixture(scope="module")
def portal_url(tmp_path_factory: pytest.TempPathFactory, mlflow_url: str) -> Iterator[str]:
    """A live portal whose registry has three versions of the service's model."""
    base = tmp_path_factory.mktemp("models-browser")
    settings = initialised_settings(base, "browser-secret", gitops=True, mlflow_url=mlflow_url)
    rest = Rest(mlflow_url)
    try:
        rest.model(MODEL, [{"holdout_mae": mae} for mae in MAE], service=SERVICE)
    finally:
        rest.client.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(support, "MODEL", MODEL)  # the catalog-info.yaml names this model
        with TestClient(create_app(settings)) as client:
            support.seed_model_service(client, settings, base / "someone")
    with live_server(settings) as url:
        yield url


def test_the_list_the_chart_and_a_promotion_through_the_form(page: Page) -> None:
    sign_in(page, "grace.hopper", "/models")
    row = page.locator(f'[data-model="{MODEL}"]').first
    expect(row).to_be_visible()
    row.get_by_role("link", name=MODEL).click()
    expect(page).to_have_url(re.compile(rf"/models/{MODEL}$"))
    page.wait_for_load_state("load")

    table = page.locator("#versions-table")
    for version, mae in enumerate(MAE, start=1):
        cell = table.locator(f'tr[data-version="{version}"] td[data-metric="holdout_mae"]')
        expect(cell).to_have_text(f"{mae:.4g}")
    expect(page.locator("#metric-charts .model-chart canvas").first).to_be_visible()

    page.select_option("#promote-version", "2")
    page.select_option("#promote-environment", "prod")
    page.get_by_role("button", name="Propose the promotion").click()
    expect(page).to_have_url(re.compile(r"/reviews/[0-9a-f]+$"))
    expect(page.locator("main")).to_contain_text(f"Promote {MODEL}")
    expect(page.locator("main")).to_contain_text("model.yaml")
