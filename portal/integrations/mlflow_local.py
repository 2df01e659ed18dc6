"""An MLflow tracking server of our own on loopback: for ``make run`` and the tests.

``LocalMlflow`` starts ``mlflow server`` from the virtualenv ``make tools`` builds
(``.tools/mlflow``, kept apart from the portal's dependencies) on 127.0.0.1, with its
runs and model registry in ``<folder>/mlflow.db`` (SQLite) and its artifacts in
``<folder>/artifacts``. The server proxies the artifacts (``--serve-artifacts``), so
clients upload and download them through the tracking URL and never need the folder.
It waits until ``/health`` answers and stops the server and its uvicorn worker on exit;
one left running by a portal that was killed is stopped by the next start on the same
folder (:mod:`portal.integrations.local_server`).

The server is configured by its command line only: inherited ``MLFLOW_*`` variables are
dropped, the portal's settings and secrets never reach it, and nothing it does calls out
of the machine (no usage telemetry, no job runner processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from portal.integrations.local_server import (
    LOOPBACK,
    LocalServer,
    LocalServerError,
    ServerProcess,
    free_port,
)
from portal.integrations.processes import scrubbed_env

# Where `make tools` installs MLflow, relative to the checkout `portal serve` runs in.
MAKE_TOOLS_MLFLOW = Path(".tools/mlflow/bin/mlflow")
# Importing MLflow and creating its tables takes seconds, more on a busy machine.
START_TIMEOUT_SECONDS = 120.0
# Starts on a fresh port after the chosen one was taken before MLflow could bind it.
BIND_ATTEMPTS = 3
# Set for the server whatever the environment says: telemetry off (MLflow's own switch
# and the common DO_NOT_TRACK), and no job runner (its huey consumers run scorers for
# GenAI evaluation, which the registry does not need).
SERVER_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
# Variables that would change what the server runs: MLflow's own settings (an inherited
# MLFLOW_TRACKING_URI or MLFLOW_SERVER_ALLOWED_HOSTS) and the interpreter's (a
# PYTHONPATH of the portal's venv, or PYTHONWARNINGS=error, which its imports trip).
_DROPPED_PREFIXES = ("MLFLOW_", "PYTHON")
# Characters a SQLAlchemy URL or an artifact URI would read as syntax, not as a path.
_URI_SYNTAX = frozenset("?#%")


class LocalMlflowError(LocalServerError):
    """The local MLflow server could not be started."""


def find_mlflow(configured: Path | None = None) -> Path | None:
    """Return mlflow's executable as an absolute path; None when there is none.

    The configured one (``PORTAL_MLFLOW_PATH``) when set, else the one ``make tools``
    installs (:data:`MAKE_TOOLS_MLFLOW`, under the current folder). Never one on PATH: the
    registry's REST calls are written against the pinned version. Absolute, because the
    server runs in its own folder.
    """
    executable = (configured if configured is not None else MAKE_TOOLS_MLFLOW).absolute()
    return executable if executable.is_file() and os.access(executable, os.X_OK) else None


def server_env() -> dict[str, str]:
    """Return the portal's environment without its secrets and MLflow's or Python's settings."""
    inherited = scrubbed_env()
    kept = {
        name: value for name, value in inherited.items() if not name.startswith(_DROPPED_PREFIXES)
    }
    return kept | SERVER_ENV


@dataclass
class LocalMlflow(LocalServer):
    """``mlflow server`` on loopback with its database and artifacts under ``folder``.

    ``executable`` defaults to :func:`find_mlflow`'s; ``port`` 0 (or a busy one) takes a
    free port. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    folder: Path
    executable: Path | None = None
    port: int = 0
    server: ServerProcess = field(init=False, repr=False, compare=False)
    name = "mlflow"
    health_path = "/health"
    error = LocalMlflowError
    start_timeout = START_TIMEOUT_SECONDS

    @property
    def backend_store_uri(self) -> str:
        """The SQLite database of runs and the model registry."""
        return f"sqlite:///{self.folder / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        """Where the server keeps the artifacts it proxies."""
        return self.folder / "artifacts"

    def command(self, executable: Path) -> list[str]:
        """Return the command line (``--option=value``: no value is read as an option)."""
        return [
            str(executable),
            "server",
            f"--backend-store-uri={self.backend_store_uri}",
            "--serve-artifacts",
            f"--artifacts-destination={self.artifacts}",
            f"--host={LOOPBACK}",
            f"--port={self.port}",
            "--workers=1",
            # MLflow refuses other Host headers (DNS rebinding); clients use these two.
            f"--allowed-hosts={LOOPBACK}:{self.port},localhost:{self.port}",
        ]

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URL."""
        executable = find_mlflow(self.executable)
        if executable is None:
            where = self.executable or MAKE_TOOLS_MLFLOW
            raise LocalMlflowError(
                f"mlflow not found at {where} (an executable file): run `make tools`"
            )
        if _URI_SYNTAX & set(str(self.folder)):
            raise LocalMlflowError(
                f"MLflow folder {self.folder}: a path with ?, # or % cannot be a store URI"
            )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LocalMlflowError(f"MLflow folder {self.folder}: {error.strerror}") from error
        # An orphan would hold the port and write to the same database.
        self.server.stop_orphan(f"--backend-store-uri={self.backend_store_uri}")
        preferred = self.port
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self.port = free_port(preferred, error=LocalMlflowError)
            try:
                self.server.start(self.command(executable), port=self.port, env=server_env())
            except LocalMlflowError as error:
                # The port was free when chosen, but MLflow binds it seconds later: another
                # program (a second portal, a client's ephemeral port) may have taken it.
                if attempt == BIND_ATTEMPTS or "address already in use" not in str(error):
                    raise
                preferred = 0
            else:
                break
        return self.url
