"""The rag-llm-service template published and rendered as the portal does, for its tests.

``test_rag_llm.py`` checks the questions and what a render holds; ``test_rag_served_app.py``
and ``tests/test_browser_rag.py`` serve the default render from its runtime lock. All render
through ``tests.templates.rendering`` with the answers here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from portal.scaffold.registry.bundled import PublishedTemplate
from portal.scaffold.registry.manifest import load_template
from tests.templates.rendering import TEMPLATES_DIR, Rendered, render_service
from tests.templates.rendering import published_template as publish_folder
from tests.templates.service_process import offline_env
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE = TEMPLATES_DIR / "rag-llm-service"
DEFAULTS: dict[str, object] = {
    "name": "runbook-assistant",
    "owner": "platform-team",
    "description": "Answers questions about the platform runbooks, with citations",
}


@contextmanager
def published_template(data: Path) -> Iterator[PublishedTemplate]:
    """Publish this template into ``data`` as the portal does; stop the Copier worker after."""
    with publish_folder(TEMPLATE, data) as published:
        yield published


def render_rag(published: PublishedTemplate, answers: dict[str, object], root: Path) -> Rendered:
    """Render ``answers`` (validated as the form would) into ``root/services/<name>``."""
    return render_service(load_template(TEMPLATE), published, answers, root)


def runtime_python(service: Rendered) -> Path:
    """Return the python of the venv of the render's runtime lock (what the image installs)."""
    return lock_venv(service.dest / RUNTIME_LOCK, TEMPLATE.name)


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return an offline environment for the served app, its index in ``data_dir``."""
    return offline_env(DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", **extra)
