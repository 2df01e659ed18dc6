"""SLO pages fed by the GitOps repository and the catalog: specs, owners, entities, preview."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.app import create_app
from portal.changes.models import Change, ChangeStatus
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.slo.store import web_url
from tests.conftest import ADA, REPO
from tests.databases import SQLITE_ONLY
from tests.slo.app_access import AUTHOR, gitops, slo_runtime
from tests.slo.live_data import spec

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

HTMX = {"HX-Request": "true"}


@pytest.fixture
def portal_slos(settings: Settings) -> Iterator[TestClient]:
    """The repository's catalog and SLO specs, the GitOps repository and trusted headers."""
    proxied = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "catalog_paths": [str(REPO / "catalog")],
            "slo_paths": [str(REPO / "sre" / "slos")],
        }
    )
    initialise(proxied, gitops=True)
    with TestClient(create_app(proxied)) as client:
        yield client


PAYMENTS = spec("payments", ("availability", 99.9)).replace('  owner: "team-a"\n', '  tier: "1"\n')


def test_service_specs_come_from_the_gitops_repository(portal_slos: TestClient) -> None:
    repo = gitops(portal_slos)
    files = {"services/payments/slo.yaml": PAYMENTS.encode(), "services/payments/x.yaml": b"a: 1"}
    repo.create_branch("scaffold/payments", files, "Add payments", AUTHOR)
    repo.merge("scaffold/payments", "Merge payments", AUTHOR)
    slo_runtime(portal_slos).slo_index_cache.clear()
    slo_index = slo_runtime(portal_slos).slo_index()
    entry = slo_index.get("payments-availability")
    assert entry is not None and slo_index.problems == ()
    assert entry.spec.origin == "gitops" and entry.spec.source == "services/payments/slo.yaml"
    assert entry.team is None  # no owner label, and no payments Component in the catalog
    portal_entry = slo_index.get("portal-requests-availability")
    assert portal_entry is not None and portal_entry.team == "platform-team"
    html = portal_slos.get("/slos/payments-availability", headers=ADA).text
    assert "services/payments/slo.yaml</code> in the GitOps repository" in html


def test_owners_fall_back_to_the_catalog_component(portal_slos: TestClient) -> None:
    repo = gitops(portal_slos)
    grafana = PAYMENTS.replace('service: "payments"', 'service: "grafana"')
    repo.create_branch(
        "scaffold/grafana", {"services/grafana/slo.yaml": grafana.encode()}, "g", AUTHOR
    )
    repo.merge("scaffold/grafana", "Merge grafana", AUTHOR)
    slo_runtime(portal_slos).slo_index_cache.clear()
    entry = slo_runtime(portal_slos).slo_index().get("grafana-availability")
    assert entry is not None and entry.owner_ref == "group:default/sre" and entry.team == "sre"


def test_web_links_to_spec_files_follow_the_forge() -> None:
    assert web_url("https://github.com/org/gitops.git", "main", "services/a/slo.yaml") == (
        "https://github.com/org/gitops/blob/main/services/a/slo.yaml"
    )
    assert web_url("git@gitlab.example.com:org/gitops.git", "main", "p") == (
        "https://gitlab.example.com/org/gitops/blob/main/p"
    )
    assert web_url("ssh://git@git.example.com:2222/org/g.git", "b", "p") == (
        "https://git.example.com/org/g/blob/b/p"
    )
    assert web_url("/srv/var/gitops/remote.git", "main", "p") is None
    assert web_url("file:///srv/remote.git", "main", "p") is None


def test_a_component_page_lists_its_slos(portal_slos: TestClient) -> None:
    html = portal_slos.get("/catalog/component/default/portal", headers=ADA).text
    section = html[html.index('<h2 id="slos">') : html.index('<h2 id="relations">')]
    assert '<a href="/slos/portal-requests-availability">requests-availability</a>' in section
    assert '<a href="/slos/portal-requests-latency">requests-latency</a>' in section
    group = portal_slos.get("/catalog/group/default/sre", headers=ADA).text
    assert '<h2 id="slos">' not in group
    grafana = portal_slos.get("/catalog/component/default/grafana", headers=ADA).text
    assert "No SLO declared for this component" in grafana
    # The error-budget policy that applies is shown: the stricter platform one for the portal.
    assert 'data-rule="error-budget-platform"' in section
    assert 'data-rule="error-budget-default"' in grafana
    assert "no error-budget data for grafana" in grafana


def _change(client: TestClient, service: str, files: dict[str, bytes]) -> str:
    branch = f"scaffold/{service}"
    sha = gitops(client).create_branch(branch, files, f"Add {service}", AUTHOR)
    change = Change(
        title=f"Create {service}",
        template="fastapi-service",
        service=service,
        owner_ref="group:default/platform-team",
        requester_ref="user:default/ada.lovelace",
        answers={"name": service},
        branch=branch,
        commit_sha=sha,
        status=ChangeStatus.READY,
    )
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(change)
        session.commit()
        return change.id


def test_a_draft_slo_is_previewed_without_live_data(portal_slos: TestClient) -> None:
    change_id = _change(portal_slos, "payments", {"services/payments/slo.yaml": PAYMENTS.encode()})
    response = portal_slos.get(f"/slos/preview/{change_id}", headers=ADA)
    assert response.status_code == 200
    html = response.text
    assert 'aria-labelledby="slo-1" data-sloth-id="payments-availability">' in html
    assert "Team: platform-team" in html  # the change's owner: the spec has no owner label
    assert '<span class="tile-value">0.1%</span>' in html  # the error budget
    assert '<span class="tile-value">43m 12s</span>' in html  # 0.1% of 30 days
    assert html.count('<tr data-severity="page"') == 2 and "Short burn" not in html
    assert "sloth-slo-sli-recordings-payments-availability" in html
    assert f'href="/reviews/{change_id}"' in html


def test_a_broken_or_missing_draft_spec_is_explained(portal_slos: TestClient) -> None:
    broken = PAYMENTS.replace("objective: 99.9", "objective: 100")
    change_id = _change(portal_slos, "broken", {"services/broken/slo.yaml": broken.encode()})
    html = portal_slos.get(f"/slos/preview/{change_id}", headers=ADA).text
    assert "The spec is refused" in html and "objective" in html and "below 100" in html
    other = _change(portal_slos, "nospec", {"services/nospec/README.md": b"hello"})
    assert (
        "The change has no services/nospec/slo.yaml."
        in portal_slos.get(f"/slos/preview/{other}", headers=ADA).text
    )
    missing = portal_slos.get("/slos/preview/unknown", headers={**ADA, "Accept": "text/html"})
    assert missing.status_code == 404
