"""``portal serve`` without ``PORTAL_MLFLOW_URL``: an MLflow model registry of its own on loopback.

When ``make tools`` installed MLflow (``.tools/mlflow``, or ``PORTAL_MLFLOW_PATH``), its
tracking server is started with its database and artifacts in ``<data dir>/mlflow/`` and
the portal serves with ``mlflow_url`` pointing at it; it stops with the portal. Without
the tool, or when it fails to start, the portal serves anyway and the Models page says
that no registry is configured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from portal.config import Settings
from portal.integrations.mlflow_local import (
    MAKE_TOOLS_MLFLOW,
    LocalMlflow,
    LocalMlflowError,
    find_mlflow,
)

logger = logging.getLogger(__name__)


@contextmanager
def local_mlflow(
    settings: Settings, *, say: Callable[[str], None] = logger.info
) -> Iterator[Settings]:
    """Yield the settings to serve with: pointing at a local MLflow when one started.

    Nothing is started when ``PORTAL_MLFLOW_URL`` is set or no mlflow executable is found;
    a server that fails to start is reported and the portal serves without it.
    """
    if settings.mlflow_url:
        yield settings
        return
    executable = find_mlflow(settings.mlflow_path)
    if executable is None:
        where = settings.mlflow_path or MAKE_TOOLS_MLFLOW
        say(
            f"No MLflow: PORTAL_MLFLOW_URL is unset and there is no mlflow at {where} "
            "(run `make tools`); the Models page will say so."
        )
        yield settings
        return
    mlflow = LocalMlflow(
        settings.data_dir / "mlflow", executable=executable, port=settings.mlflow_port
    )
    say("Starting the local MLflow (the model registry)...")
    try:
        url = mlflow.start()
    except LocalMlflowError as error:
        say(f"Local MLflow did not start ({error}); serving without it.")
        yield settings
        return
    say(f"Local MLflow at {url} (data in {mlflow.folder})")
    try:
        yield settings.model_copy(update={"mlflow_url": url})
    finally:
        mlflow.stop()
        say("Local MLflow stopped.")
