"""Rendering a bundled template for a benchmark, through the portal's own publish/render path."""

from __future__ import annotations

from pathlib import Path

from portal.integrations import copier as copier_integration
from portal.integrations.copier import render
from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import publish
from portal.scaffold.registry.manifest import load_template


def render_defaults(template: Path, root: Path, answers: dict[str, object]) -> Path:
    """Render ``template`` with ``answers`` (the rest its defaults) into ``root/services/<name>``.

    The answers are validated as the portal's form would; a refusal stops the benchmark.
    """
    info = load_template(template)
    published = publish(info, root / "data")
    validated, errors = validate_answers(info.questions, answers)
    if errors:
        raise SystemExit(f"the default answers do not validate: {errors}")
    dest = root / "services" / str(answers["name"])
    try:
        render(published.src, published.vcs_ref, validated, dest)
    finally:
        copier_integration.shutdown()
    return dest
