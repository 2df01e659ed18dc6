"""A draft SLO in a change under review, previewed like a live one but without live data.

The spec is ``services/<service>/slo.yaml`` at the change's commit on its branch of the
GitOps repository. The preview shows what the SLO promises (objective, period, error
budget), the alert conditions with their thresholds, and the rules the portal generates;
spec errors are listed instead, naming file, SLO and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from markupsafe import Markup
from sqlmodel import Session

from portal.changes.models import Change
from portal.changes.store import get_change
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo, RefNotFoundError
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import GenerateOptions, render_outputs, resolve_sources
from portal.slo.detail import Detail, build_detail
from portal.slo.overview import status_of
from portal.slo.present import highlight_yaml
from portal.slo.store import IndexedSLO, SpecFile, web_url


@dataclass(frozen=True)
class SLOPreview:
    """The preview of one change's SLO spec."""

    change: Change
    path: str
    spec: SpecFile | None = None
    message: str | None = None  # why there is nothing to preview
    errors: Sequence[str] = ()
    slos: Sequence[Detail] = ()
    rules_html: Markup = field(default_factory=Markup)
    spec_html: Markup = field(default_factory=Markup)


def spec_path(service: str) -> str:
    """Where a service's SLO spec lives in the GitOps repository."""
    return f"services/{service}/slo.yaml"


def preview_spec(change: Change, spec: SpecFile) -> SLOPreview:
    """Resolve a draft spec and build its tiles, alert table and rules (no Prometheus)."""
    path = spec.source
    spec_html = highlight_yaml(spec.text)
    try:
        slos = resolve_sources({path: spec.text}, GenerateOptions())
    except InvalidSpecError as error:
        problems = [str(problem) for problem in error.errors]
        return SLOPreview(change, path, spec, errors=problems, spec_html=spec_html)
    outputs = render_outputs(slos, GenerateOptions(), [path])
    rules = "\n".join(output.text for output in outputs if output.kind == "rules")
    details = []
    for slo in slos:
        owner = slo.labels.get("team") or slo.labels.get("owner") or change.owner_ref
        status = status_of(IndexedSLO(slo, spec, owner), None)
        details.append(build_detail(status, None, charts=False))
    return SLOPreview(
        change,
        path,
        spec,
        slos=details,
        rules_html=highlight_yaml(rules),
        spec_html=spec_html,
    )


def preview_for_change(session: Session, gitops: GitOpsRepo, change_id: str) -> SLOPreview | None:
    """Preview the SLO spec of a change; None when there is no such change."""
    change = get_change(session, change_id)
    if change is None:
        return None
    path = spec_path(change.service)
    ref = change.commit_sha
    if ref is None:
        message = "The change has no commit yet (it is still being rendered)."
        return SLOPreview(change, path, message=message)
    try:
        text = gitops.read_file(ref, path).decode("utf-8", errors="replace")
    except RefNotFoundError:
        return SLOPreview(change, path, message=f"The change has no {path}.")
    except GitError as error:
        return SLOPreview(change, path, message=f"The GitOps repository cannot be read: {error}")
    url = web_url(gitops.public_url, change.branch, path)
    spec = SpecFile(path, text, "gitops", url, gitops.public_url, ref)
    return preview_spec(change, spec)
