"""A real MLflow tracking server for the tests: one per test process, shared by its tests.

Also a pytest plugin (``pytest_plugins`` in tests/conftest.py). ``mlflow_url`` starts the
MLflow of ``make tools`` (``.tools/mlflow``, or ``PORTAL_MLFLOW_PATH``) on a free loopback
port with its database and artifacts in a temporary folder, once per test process (each
pytest-xdist worker has its own), and stops it when the session ends. Without the tool
the tests that use it are skipped with the reason (failed in CI). The registry is shared:
every test names its registered models uniquely (e.g. with ``uuid4().hex``).
:func:`stand_in` writes an executable standing in for ``mlflow`` (a broken install).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.integrations.mlflow_local import LocalMlflow
from tests.conftest import require_tool


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMlflow]:
    """The running server (its folder, log and URL); skipped without ``make tools``."""
    executable = require_tool("mlflow")
    with LocalMlflow(tmp_path_factory.mktemp("mlflow"), executable=executable) as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_url(mlflow_server: LocalMlflow) -> str:
    """The tracking URL of the shared server, e.g. ``http://127.0.0.1:41234``."""
    return mlflow_server.url


def stand_in(folder: Path, script: str) -> Path:
    """Write ``folder/bin/mlflow``, an executable running ``script`` (with its #! line)."""
    (folder / "bin").mkdir(exist_ok=True)
    executable = folder / "bin" / "mlflow"
    executable.write_text(script)
    executable.chmod(0o755)
    return executable


def failing_stand_in(
    folder: Path, code: int, output: str = "Error: No such command server."
) -> Path:
    """A broken or foreign ``mlflow``: notes each run (in its working folder), prints, exits."""
    return stand_in(folder, f"#!/bin/sh\necho run >> runs\necho '{output}'\nexit {code}\n")
