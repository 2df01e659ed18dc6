"""``portal serve``'s local MLflow: started only when needed, and never in the portal's way.

The start itself and ``portal serve`` with a real server are in
tests/integrations/test_mlflow_local.py and tests/test_serve.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from portal.config import Settings
from portal.models.local import local_mlflow
from tests.mlflow_server import failing_stand_in


def settings_of(tmp_path: Path, **values: Any) -> Settings:
    fields: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "secret_key": "test-secret-key",
        "catalog_paths": [],
        "mlflow_url": None,
        "mlflow_path": tmp_path / "no-mlflow",
    }
    return Settings(**(fields | values))


def test_a_configured_registry_starts_nothing(tmp_path: Path) -> None:
    said: list[str] = []
    configured = settings_of(tmp_path, mlflow_url="https://mlflow.example.com/")
    with local_mlflow(configured, say=said.append) as served:
        assert served.mlflow_url == "https://mlflow.example.com"
    assert said == []
    assert not (tmp_path / "var" / "mlflow").exists()


def test_without_the_tool_the_portal_serves_and_says_how_to_get_it(tmp_path: Path) -> None:
    said: list[str] = []
    with local_mlflow(settings_of(tmp_path), say=said.append) as served:
        assert served.mlflow_url is None
    assert len(said) == 1
    assert "PORTAL_MLFLOW_URL is unset" in said[0] and "run `make tools`" in said[0]
    assert str(tmp_path / "no-mlflow") in said[0]


def test_a_server_that_fails_to_start_is_reported_and_left_out(tmp_path: Path) -> None:
    tool = failing_stand_in(tmp_path, 1, "database is locked")
    said: list[str] = []
    with local_mlflow(settings_of(tmp_path, mlflow_path=tool), say=said.append) as served:
        assert served.mlflow_url is None
    assert said[-1].startswith("Local MLflow did not start (mlflow exited with 1: ")
    assert "database is locked" in said[-1] and said[-1].endswith("serving without it.")
    assert (tmp_path / "var" / "mlflow" / "mlflow.log").is_file()  # in the data dir


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("ftp://mlflow.example.com", "not an http"),
        ("mlflow:5000", "not an http"),
        ("http://", "not an http"),
        ("https://ci:s3cret@mlflow.example.com", "credentials: it is shown on the Models page"),
        ("http://mlflow.example.com/?x=1", "no spaces, query or fragment"),
    ],
)
def test_an_mlflow_url_the_portal_cannot_use_is_refused(
    tmp_path: Path, bad: str, reason: str
) -> None:
    with pytest.raises(ValueError, match=f"mlflow_url\n.*{reason}"):
        settings_of(tmp_path, mlflow_url=bad)


def test_the_mlflow_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_MLFLOW_URL", " http://mlflow.mlflow.svc.cluster.local:5000/ ")
    monkeypatch.setenv("PORTAL_MLFLOW_PORT", "5055")
    monkeypatch.setenv("PORTAL_MLFLOW_TIMEOUT_SECONDS", "2.5")
    settings = Settings()
    assert settings.mlflow_url == "http://mlflow.mlflow.svc.cluster.local:5000"
    assert (settings.mlflow_port, settings.mlflow_timeout_seconds) == (5055, 2.5)
    monkeypatch.setenv("PORTAL_MLFLOW_TIMEOUT_SECONDS", "0")
    with pytest.raises(ValueError, match="mlflow_timeout_seconds"):
        Settings()
