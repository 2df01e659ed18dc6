"""Flux sync state on the pages: an entity page and a merged change's.

With the real app, GitOps repository and kubernetes client (recorded answers on loopback).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from tests.catalog.test_sync_state import SHA_B, merged
from tests.conftest import ADA, REPO
from tests.databases import PAGES_ON_SQLITE
from tests.integrations.flux_api_support import (
    APPLIED_SHA,
    FORBIDDEN,
    READY_DEV,
    Answer,
    FakeKubeApi,
    kube_api,
    write_kubeconfig,
)
from tests.proposals.seed import SERVICE, seed_service


@contextmanager
def flux_portal(
    settings: Settings,
    tmp_path: Path,
    prod: Answer,
    *,
    configured: bool = True,
    timeout: float = 5.0,
) -> Iterator[tuple[TestClient, FakeKubeApi]]:
    """The app with air-quality on main (dev, prod) and a kubeconfig of two loopback clusters.

    The clusters' budget is generous unless a test is about a slow one: on a loaded
    machine a loopback answer took more than half a second.
    """
    answers = {"dev-token": {SERVICE: READY_DEV}, "prod-token": {SERVICE: prod}}
    with kube_api(answers) as (api, port):
        contexts = {"dev-ctx": "dev-token", "prod-ctx": "prod-token"}
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, contexts)
        kube = {
            "kubeconfig": kubeconfig,
            "kube_contexts": {"dev": "dev-ctx", "prod": "prod-ctx"},
            "kubernetes_timeout_seconds": timeout,
        }
        proxied = settings.model_copy(
            update={
                "auth_mode": AuthMode.TRUSTED_HEADER,
                "catalog_paths": [str(REPO / "catalog")],
                **(kube if configured else {}),
            }
        )
        initialise(proxied, gitops=True)
        with TestClient(create_app(proxied)) as client:
            seed_service(client, proxied, tmp_path / "work")
            yield client, api


def section(page: str, id_: str) -> str:
    found = re.search(rf'<section[^>]*id="{id_}".*?</section>', page, re.S)
    assert found is not None, page
    return found.group(0)


def row(html: str, environment: str) -> str:
    found = re.search(rf'<(tr|li) data-environment="{environment}".*?</\1>', html, re.S)
    assert found is not None, html
    return re.sub(r"\s+", " ", found.group(0))


@PAGES_ON_SQLITE
def test_the_entity_page_shows_each_environments_sync_state(
    settings: Settings, tmp_path: Path
) -> None:
    with flux_portal(settings, tmp_path, FORBIDDEN) as (client, api):
        page = client.get(f"/catalog/component/default/{SERVICE}", headers=ADA)
        again = client.get(f"/catalog/component/default/{SERVICE}", headers=ADA)

    assert page.status_code == 200
    html = section(page.text, "sync-state")
    dev, prod = row(html, "dev"), row(html, "prod")
    assert 'data-sync="ready"' in dev and ">Ready<" in dev
    assert f'<code title="main@sha1:{APPLIED_SHA}">{APPLIED_SHA[:12]}</code>' in dev
    assert "Applied revision: main@sha1:" in dev and "ReconciliationSucceeded" in dev
    assert 'data-sync="error"' in prod
    assert "context prod-ctx forbids the portal to read Kustomizations (403 Forbidden)" in prod
    # One read per cluster: the second page came from the cache.
    assert sorted(auth for _path, auth in api.requests) == ["Bearer dev-token", "Bearer prod-token"]
    assert section(again.text, "sync-state") == html


@PAGES_ON_SQLITE
def test_a_slow_cluster_does_not_hold_the_entity_page(settings: Settings, tmp_path: Path) -> None:
    # The answer comes long after the page's 2 s budget; the margins between the three keep
    # the test meaningful on a loaded machine (the server's threads are daemons: no wait).
    slow = Answer(200, "kustomization-failed-prod.json", delay=20.0)
    with flux_portal(settings, tmp_path, slow, timeout=2.0) as (client, _api):
        started = time.monotonic()
        page = client.get(f"/catalog/component/default/{SERVICE}", headers=ADA)
        waited = time.monotonic() - started

    assert page.status_code == 200 and waited < 12
    html = section(page.text, "sync-state")
    assert 'data-sync="ready"' in row(html, "dev")
    assert "did not answer within 2 s" in row(html, "prod")


@PAGES_ON_SQLITE
def test_without_kubernetes_the_page_says_it_is_not_configured(
    settings: Settings, tmp_path: Path
) -> None:
    with flux_portal(settings, tmp_path, FORBIDDEN, configured=False) as (client, api):
        service = client.get(f"/catalog/component/default/{SERVICE}", headers=ADA)
        group = client.get("/catalog/group/default/platform-team", headers=ADA)

    assert service.status_code == 200
    assert "Kubernetes is not configured" in section(service.text, "sync-state")
    assert group.status_code == 200 and 'id="sync-state"' not in group.text
    assert api.requests == []


def add_merged_change(client: TestClient, merge_sha: str) -> str:
    change = merged(merge_sha)
    change.service = SERVICE
    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        session.add(change)
        session.commit()
        return change.id


@PAGES_ON_SQLITE
def test_a_merged_change_says_where_flux_deployed_it(settings: Settings, tmp_path: Path) -> None:
    with flux_portal(settings, tmp_path, FORBIDDEN) as (client, _api):
        deployed = client.get(f"/reviews/{add_merged_change(client, APPLIED_SHA)}", headers=ADA)
        waiting = client.get(f"/reviews/{add_merged_change(client, SHA_B)}", headers=ADA)

    assert deployed.status_code == 200 and waiting.status_code == 200
    html = section(deployed.text, "deployed")
    assert (
        f'Deployed to dev at <code title="main@sha1:{APPLIED_SHA}">{APPLIED_SHA[:12]}</code>'
        in (row(html, "dev"))
    )
    assert "prod: waiting for Flux" in row(html, "prod") and "403 Forbidden" in row(html, "prod")
    later = row(section(waiting.text, "deployed"), "dev")
    assert 'data-deployed="no"' in later and "dev: waiting for Flux (it applies" in later
    assert APPLIED_SHA[:12] in later
