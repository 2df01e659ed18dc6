"""Settings that are worked out, not just read: the scratch folder, the template base URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from portal import config
from portal.cli import served_template_base_url
from portal.config import Settings


def test_an_explicit_scratch_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTAL_SCRATCH_DIR", str(tmp_path))
    assert Settings().resolved_scratch_dir() == tmp_path


def test_shared_memory_is_the_scratch_folder_only_with_room_to_spare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTAL_SCRATCH_DIR", raising=False)
    monkeypatch.setattr(config, "SHARED_MEMORY", tmp_path)
    monkeypatch.setattr(config, "SCRATCH_MIN_FREE", 1)
    assert Settings().resolved_scratch_dir() == tmp_path
    monkeypatch.setattr(config, "SCRATCH_MIN_FREE", 1 << 62)  # a small /dev/shm
    assert Settings().resolved_scratch_dir() is None  # the system temp folder
    monkeypatch.setattr(config, "SCRATCH_MIN_FREE", 1)
    monkeypatch.setattr(config, "SHARED_MEMORY", tmp_path / "missing")
    assert Settings().resolved_scratch_dir() is None


def test_a_relative_data_dir_is_anchored_where_the_settings_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTAL_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    default = Settings()
    assert default.data_dir == tmp_path / "var"  # make run's ./var
    monkeypatch.setenv("PORTAL_DATA_DIR", "state/portal")
    relative = Settings()
    assert relative.data_dir == tmp_path / "state" / "portal"
    # A child started in another folder (the local Prometheus in <data dir>/prometheus)
    # is handed the same place.
    monkeypatch.chdir(tmp_path / "..")
    assert relative.data_dir == tmp_path / "state" / "portal"
    assert Settings(data_dir=Path("/srv/portal")).data_dir == Path("/srv/portal")


def test_the_template_base_url_defaults_to_where_portal_serve_listens() -> None:
    assert Settings().template_base_url() == "http://127.0.0.1:8000/templates.git"
    assert served_template_base_url("127.0.0.1", 8000) == Settings().template_base_url()
    assert served_template_base_url("::1", 8080) == "http://[::1]:8080/templates.git"


def test_the_template_base_url_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "PORTAL_TEMPLATE_PUBLIC_BASE_URL", "https://portal.example.com/templates.git/"
    )
    assert Settings().template_base_url() == "https://portal.example.com/templates.git"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://portal.example.com/templates.git",
        "file:///srv/templates",
        "/srv/templates",
        "https://user:token@portal.example.com/templates.git",
        "https://portal.example.com/templates.git?x=1",
        "https://portal.example.com/templates.git#top",
        "https://portal.example.com/a b",
        "https:///templates.git",
        "https://portal.example.com/\ttemplates.git",
    ],
)
def test_a_template_base_url_git_or_copier_cannot_use_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="template_public_base_url"):
        Settings(template_public_base_url=url)
