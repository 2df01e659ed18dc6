"""``portal templates update``: a batch from the command line, its exit codes and its table."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from portal.app import create_app
from portal.cli import app
from portal.config import Settings
from tests.conftest import REPO, runtime
from tests.fleet.support import edit, generate, release
from tests.fleet_versions import TEMPLATE_NAME

runner = CliRunner()
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
def test_update_from_the_command_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    release(templates, "v1")
    for name, value in {
        "PORTAL_DATA_DIR": settings.data_dir,
        "PORTAL_CATALOG_PATHS": REPO / "catalog",
        "PORTAL_GITOPS_SEED_DIR": REPO / "gitops-repo",
        "PORTAL_TEMPLATES_DIR": templates,
    }.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    assert runner.invoke(app, ["init"]).exit_code == 0
    with TestClient(create_app(Settings())) as client:
        runtime(client).context.registry.all()
        for service in ("plain", "clash"):
            generate(client, service, tmp_path / "scratch")
        edit(client, "clash", b"memory: 128Mi", b"memory: 192Mi")
    release(templates, "v3")

    refused = runner.invoke(
        app, ["templates", "update", TEMPLATE_NAME, "--to", "v7.0.0", "--requester", "ada.lovelace"]
    )
    assert refused.exit_code == 2, refused.output
    assert f"to_ref: {TEMPLATE_NAME} has no version v7.0.0" in refused.output
    stranger = runner.invoke(
        app, ["templates", "update", TEMPLATE_NAME, "--to", "v3.0.0", "--requester", "nobody"]
    )
    assert stranger.exit_code == 2 and "is not a catalog User" in stranger.output

    update = ["templates", "update", TEMPLATE_NAME, "--to", "v3.0.0"]
    one = runner.invoke(app, [*update, "--service", "plain", "--requester", "ada.lovelace"])
    assert one.exit_code == 0, one.output
    assert "plain" in one.output and "ready" in one.output and "clash" not in one.output

    rest = runner.invoke(app, [*update, "--requester", "ada.lovelace"])
    assert rest.exit_code == 1, rest.output  # the colliding edit is conflicted
    assert "conflicted" in rest.output and "an update is already open" in rest.output
