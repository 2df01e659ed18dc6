"""Updates from a template registered by git URL: its registered versions, and an update."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, REPO, changes_runtime, runtime
from tests.fleet.support import land
from tests.fleet_versions import TEMPLATE_NAME, git, template_repo

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    allowed = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "catalog_paths": [str(REPO / "catalog")],
            "template_url_schemes": ["https", "file"],
        }
    )
    initialise(allowed, gitops=True)
    with TestClient(create_app(allowed)) as test_client:
        yield test_client


def _register(client: TestClient, url: str, ref: str) -> None:
    answer = client.post(
        "/api/templates", json={"url": url, "ref": ref, "name": TEMPLATE_NAME}, headers=ADA
    )
    assert answer.status_code == 201, answer.text


@SQLITE_ONLY
def test_a_registered_template_lists_its_registered_versions_and_updates(
    client: TestClient, tmp_path: Path
) -> None:
    upstream = template_repo(tmp_path / "upstream")
    url = upstream.as_uri()
    _register(client, url, "v1.0.0")
    template = runtime(client).context.registry.get(TEMPLATE_NAME)
    assert template is not None and template.source is not None
    v1 = git(upstream, "rev-parse", "v1.0.0^{commit}").strip()
    dest = tmp_path / "shop"
    answers = {"name": "shop", "owner": "platform-team"}
    result = runtime(client).context.renderer.render(
        template.src, template.vcs_ref, answers, dest, source=template.source
    )
    files = {f"services/shop/{p}": (dest / p).read_bytes() for p in result.files}
    assert f"_commit: {v1}".encode() in files["services/shop/.copier-answers.yml"]
    land(changes_runtime(client).gitops(), "scaffold/shop", files)
    _register(client, url, "v3.0.0")  # a new release, registered again

    fleet = client.get(f"/api/templates/{TEMPLATE_NAME}/fleet").json()
    assert [v["tag"] for v in fleet["versions"]] == ["v3.0.0", "v1.0.0"]
    [shop] = fleet["services"]
    assert (shop["version"], shop["behind"]) == (v1, 1)
    assert shop["local_edits"] == {"modified": [], "added": [], "removed": [], "error": None}

    unregistered = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates", json={"to_ref": "v2.0.0"}, headers=ADA
    )
    assert unregistered.status_code == 422  # never registered: not a version here
    accepted = client.post(
        f"/api/templates/{TEMPLATE_NAME}/updates", json={"to_ref": "v3.0.0"}, headers=ADA
    )
    assert accepted.status_code == 202, accepted.text
    assert run_pending(runtime(client).context) == 1
    [entry] = client.get(accepted.json()["url"]).json()["services"]
    assert entry["state"] == "ready", entry
    change = client.get(f"/api/changes/{entry['change']}", headers=ADA).json()
    repo = changes_runtime(client).gitops()
    recorded = repo.read_file(change["commit"], "services/shop/.copier-answers.yml").decode()
    v3 = git(upstream, "rev-parse", "v3.0.0^{commit}").strip()
    assert f"_commit: {v3}" in recorded and f"_src_path: {url}" in recorded
    assert "services/shop/k8s/pdb.yaml" in repo.list_files(change["commit"], "services/shop")
