"""Every hostile answer of the corpus gets a 422 naming its field; nothing is written."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.app import create_app
from portal.changes.models import Change
from portal.cli import initialise
from portal.config import AuthMode, Settings
from tests.conftest import ADA, REPO, runtime
from tests.scaffold.hostile_answers import CORPUS, TEMPLATE, TEN_MB, VALID, Hostile


def post_json(client: TestClient, answers: Mapping[str, object]) -> tuple[int, dict[str, str]]:
    # Written with the standard library's escapes: httpx writes raw UTF-8, which a lone
    # surrogate cannot be, and a JSON client can send one as "\ud800".
    body = json.dumps({"template": TEMPLATE, "answers": answers}).encode()
    headers = {**ADA, "Content-Type": "application/json"}
    response = client.post("/api/scaffold", content=body, headers=headers)
    errors = response.json().get("errors", {}) if response.status_code == 422 else {}
    return response.status_code, errors


@pytest.fixture(scope="module")
def hostile_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One portal for the whole corpus: every request is refused, so none affects the next."""
    data_dir = tmp_path_factory.mktemp("hostile") / "var"
    settings = Settings(
        data_dir=data_dir,
        catalog_paths=[str(REPO / "catalog")],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        auth_mode=AuthMode.TRUSTED_HEADER,
    )
    if "max_body_bytes" in Settings.model_fields:  # the 10 MB answers must reach validation
        settings = settings.model_copy(update={"max_body_bytes": 4 * TEN_MB})
    initialise(settings, gitops=True)
    with TestClient(create_app(settings)) as client:
        yield client


def branches(data_dir: Path) -> list[str]:
    remote = data_dir / "gitops" / "remote.git"
    listing = subprocess.run(
        ["git", "--git-dir", str(remote), "for-each-ref", "--format=%(refname)", "refs/heads"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


@pytest.mark.parametrize("hostile", CORPUS, ids=[hostile.id for hostile in CORPUS])
def test_a_hostile_answer_is_refused_on_its_field_and_nothing_is_written(
    hostile_portal: TestClient, hostile: Hostile
) -> None:
    status, errors = post_json(hostile_portal, {**VALID, hostile.field: hostile.value})

    assert status == 422, (hostile.id, status)
    assert hostile.reported in errors, {key[:80]: value[:200] for key, value in errors.items()}
    assert hostile.says in errors[hostile.reported]
    context = runtime(hostile_portal).context
    with Session(context.engine) as session:
        assert session.exec(select(Change)).all() == []
    assert branches(context.settings.data_dir) == ["refs/heads/main"]


def test_the_corpus_base_request_is_accepted(portal: TestClient) -> None:
    # Without this, a corpus entry could pass on some other field's refusal.
    status, errors = post_json(portal, VALID)

    assert status == 202, errors


def test_the_corpus_covers_every_kind_of_attack() -> None:
    values = [str(hostile.value) for hostile in CORPUS]
    fields = {hostile.field for hostile in CORPUS}

    assert any("{{" in value for value in values) and any("{%" in value for value in values)
    assert {"_src_path", "_commit", "_tasks"} <= fields
    assert any(value.startswith("-") for value in values)
    assert any("\x00" in value for value in values) and any("\ud800" in value for value in values)
    assert any(len(value) >= TEN_MB for value in values)
    issue_names = {"kube-system", "flux-system", "default", "kube-public", "kube-node-lease"}
    issue_names |= {"monitoring", "infrastructure", "main", "head"}
    assert issue_names <= set(values)
