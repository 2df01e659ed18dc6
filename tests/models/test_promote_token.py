"""An API token scoped to a service may propose its model promotions, and nothing more.

A promotion is a proposal, so a CI pipeline holding the service's ``changes:propose``
token may ask for one; the token's scope is checked, and the change still needs a person.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADA, GRACE
from tests.models.promote_support import App, promote, promote_app
from tests.proposals.seed import SERVICE


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One app for the module (its own GitOps repository and catalog)."""
    yield from promote_app(Path(tmp_path_factory.mktemp("promote-token")))


def bearer_of(app: App, services: list[str]) -> dict[str, str]:
    client, _, _ = app
    response = client.post(
        "/api/tokens", json={"name": "pipeline", "services": services}, headers=GRACE
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_a_scoped_token_proposes_a_promotion_a_person_must_approve(app: App) -> None:
    client, _, _ = app
    other = bearer_of(app, ["flux"])
    refused = promote(client, other, version="2", environment="prod")
    assert refused.status_code == 403, refused.text
    assert "scoped to changes:propose for flux" in refused.json()["detail"]

    token = bearer_of(app, [SERVICE])
    proposed = promote(client, token, version="2", environment="prod")
    assert proposed.status_code == 201, proposed.text
    change = proposed.json()["change"]
    approve = client.post(f"/api/changes/{change['id']}/approve", json={}, headers=token)
    assert approve.status_code == 403  # a token proposes; approving needs a person
    assert client.get(f"/api/changes/{change['id']}", headers=ADA).json()["status"] != "merged"
