"""The ``portal`` CLI: init, catalog import and serve's safety check."""

import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from portal.catalog.models import Entity
from portal.cli import app, is_loopback
from portal.config import Settings
from portal.db import make_engine
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_CATALOG_PATHS", str(REPO / "catalog"))
    monkeypatch.setenv("PORTAL_GITOPS_SEED_DIR", str(REPO / "gitops-repo"))
    if settings.database_url:
        monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    return settings


def count(settings: Settings) -> int:
    engine = make_engine(settings)
    with Session(engine) as session:
        total = len(session.exec(select(Entity)).all())
    engine.dispose()
    return total


def test_init_migrates_and_imports_the_repository_catalog(env: Settings) -> None:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "27 added" in result.output
    assert (env.data_dir / "secret.key").exists()
    remote = env.data_dir / "gitops" / "remote.git"
    files = subprocess.run(
        ["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "clusters/prod/infrastructure.yaml" in files
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "27 unchanged" in again.output
    log = subprocess.run(
        ["git", "--git-dir", str(remote), "rev-list", "--count", "main"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout.strip() == "1"  # a second init never re-seeds
    assert count(env) == 27


def test_init_reports_a_missing_gitops_seed(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_GITOPS_SEED_DIR", str(env.data_dir / "nope"))
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 1
    assert "GitOps repository:" in result.output and "nope" in result.output


def test_catalog_import_exits_non_zero_on_problems(env: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: x}\n"
        "spec: {type: service}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["catalog", "import", str(bad)])
    assert result.exit_code == 1
    assert "spec.lifecycle" in result.output and "document 0 line 4" in result.output
    good = runner.invoke(app, ["catalog", "import", str(REPO / "catalog" / "all.yaml")])
    assert good.exit_code == 0, good.output
    assert count(env) == 27


def test_help_is_available_for_every_command() -> None:
    for args in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["catalog", "import", "--help"],
        ["templates", "list", "--help"],
        ["scaffold", "--help"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_serve_refuses_a_public_address_in_local_mode(env: Settings) -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "8999"])
    assert result.exit_code == 2
    assert "Refusing to listen on 0.0.0.0" in result.output


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.8.9.10", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_templates_list_and_scaffold(env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_TEMPLATES_DIR", str(REPO / "templates"))
    assert runner.invoke(app, ["init"]).exit_code == 0
    listed = runner.invoke(app, ["templates", "list"])
    assert listed.exit_code == 0 and "fastapi-service" in listed.output
    bad = runner.invoke(
        app, ["scaffold", "fastapi-service", "--name", "Bad_Name", "--owner", "platform-team"]
    )
    assert bad.exit_code == 2 and "name" in bad.output  # refused input
    good = runner.invoke(
        app,
        [
            "scaffold",
            "fastapi-service",
            "--name",
            "cli-svc",
            "--owner",
            "platform-team",
            "--set",
            "description=From the CLI",
            "--set",
            "environments=[dev, prod]",
            "--requester",
            "ada.lovelace",
        ],
    )
    assert good.exit_code == 0, good.output
    assert "ready" in good.output and "kustomize (prod)" in good.output
    assert "kustomize (staging)" not in good.output
    remote = env.data_dir / "gitops" / "remote.git"
    branches = subprocess.run(
        ["git", "--git-dir", str(remote), "branch", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "scaffold/cli-svc" in branches
