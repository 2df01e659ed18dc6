"""The aiops-detector published and rendered as the portal does, for its two test modules.

``test_aiops_detector.py`` checks the questions and what a render holds;
``test_aiops_served_app.py`` serves the default render from its runtime lock. Both render
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

TEMPLATE = TEMPLATES_DIR / "aiops-detector"
DEFAULTS: dict[str, object] = {
    "name": "checkout-anomalies",
    "owner": "platform-team",
    "description": "Flags anomalies in checkout latency",
}


@contextmanager
def published_template(data: Path) -> Iterator[PublishedTemplate]:
    """Publish this template into ``data`` as the portal does; stop the Copier worker after."""
    with publish_folder(TEMPLATE, data) as published:
        yield published


def render_aiops(published: PublishedTemplate, answers: dict[str, object], root: Path) -> Rendered:
    """Render ``answers`` (validated as the form would) into ``root/services/<name>``."""
    return render_service(load_template(TEMPLATE), published, answers, root)
