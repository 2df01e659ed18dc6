"""Local catalog files: regular files only, read with a bound (``/dev/zero`` says 0 bytes)."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from portal.catalog.importer import import_locations
from portal.catalog.local_files import UnreadableFileError, read_regular_file
from portal.cli import app as cli
from portal.config import Settings
from tests.conftest import ADA, csrf_token

ZERO = Path("/dev/zero")
needs_dev_zero = pytest.mark.skipif(not ZERO.is_char_device(), reason="no /dev/zero here")


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    """A named pipe nobody writes to: opening it to read would wait forever."""
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    """A listening Unix socket in the file system."""
    path = tmp_path / "socket.yaml"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        yield path


def test_a_fifo_is_refused_without_waiting_for_a_writer(fifo: Path) -> None:
    with pytest.raises(
        UnreadableFileError, match=r"^is a FIFO \(named pipe\), not a regular file$"
    ):
        read_regular_file(fifo, 1000)


@needs_dev_zero
def test_a_device_is_refused_before_it_is_read() -> None:
    with pytest.raises(UnreadableFileError, match=r"^is a character device, not a regular file$"):
        read_regular_file(ZERO, 1000)


def test_a_socket_and_a_directory_are_refused(unix_socket: Path, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"^is a socket, not a regular file$"):
        read_regular_file(unix_socket, 1000)
    with pytest.raises(UnreadableFileError, match=r"^is a directory, not a YAML file$"):
        read_regular_file(tmp_path, 1000)


def test_the_read_is_bounded_at_the_limit(tmp_path: Path) -> None:
    exact, over = tmp_path / "exact.yaml", tmp_path / "over.yaml"
    exact.write_bytes(b"a" * 1000)
    over.write_bytes(b"a" * 1001)
    assert read_regular_file(exact, 1000) == b"a" * 1000
    with pytest.raises(UnreadableFileError, match="larger than the 1000 byte limit"):
        read_regular_file(over, 1000)
    # A sparse 1 TiB file costs no disk; reading it whole would fail (MemoryError) or take
    # the machine's memory, reading limit + 1 bytes of it takes nothing.
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as file:
        file.truncate(1 << 40)
    with pytest.raises(UnreadableFileError, match="larger than the 1000 byte limit"):
        read_regular_file(huge, 1000)


def test_special_files_are_problems_naming_the_file(
    session: Session, settings: Settings, fifo: Path, tmp_path: Path
) -> None:
    report = import_locations(session, [str(fifo), str(tmp_path / "missing.yaml")], settings)
    problems = {problem.source: problem.message for problem in report.problems}
    assert problems == {
        str(fifo): "is a FIFO (named pipe), not a regular file",
        str(tmp_path / "missing.yaml"): "file not found",
    }


def test_special_files_in_a_walked_folder_and_as_location_targets(
    session: Session, settings: Settings, fifo: Path, tmp_path: Path
) -> None:
    (tmp_path / "component.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: shop}
        spec: {type: service, lifecycle: production, owner: team-a}
        """),
        encoding="utf-8",
    )
    walked = import_locations(session, [str(tmp_path)], settings)
    assert walked.added == 1  # the component; the FIFO beside it is a problem, not a hang
    assert [(p.source, p.message) for p in walked.problems] == [
        (str(fifo), "is a FIFO (named pipe), not a regular file")
    ]
    # Written after the walk: folder imports are recursive, and this test is about targets.
    location = tmp_path / "elsewhere" / "all.yaml"
    location.parent.mkdir()
    targets = [f"../{fifo.name}", *([str(ZERO)] if ZERO.is_char_device() else [])]
    location.write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: all}\n"
        f"spec: {{targets: {json.dumps(targets)}}}\n",
        encoding="utf-8",
    )
    followed = import_locations(session, [str(location)], settings)
    messages = {problem.source: problem.message for problem in followed.problems}
    assert messages[str(fifo)] == "is a FIFO (named pipe), not a regular file"
    if ZERO.is_char_device():
        assert messages[str(ZERO)] == "is a character device, not a regular file"


@needs_dev_zero
def test_cli_import_of_dev_zero_reports_a_problem(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["catalog", "import", str(ZERO)])
    assert result.exit_code == 1, result.output
    assert "/dev/zero" in result.output and "character device" in result.output


@needs_dev_zero
def test_an_admin_ui_import_of_dev_zero_shows_the_problem(portal: TestClient) -> None:
    token = csrf_token(portal, "/catalog/import")
    response = portal.post(
        "/catalog/import",
        data={"locations": str(ZERO), "csrf_token": token},
        headers={**ADA, "accept": "text/html"},
    )
    assert response.status_code == 200
    assert "character device, not a regular file" in response.text
