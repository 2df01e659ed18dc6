"""Settings that are worked out, not just read: the scratch folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal import config
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
