"""``POST /cost/{service}/right-size``: one click from a recommendation to a reviewed change.

The recommendation is computed again here, from the manifests on the current ``main`` and
the usage metrics (posted numbers are never trusted: the form names only the environment
and, optionally, the container). The change lowers the requests in the environment's
overlay with a strategic-merge patch file, ``deploy/overlays/<env>/right-sizing.yaml``,
listed last in the overlay's ``patches`` so it wins over earlier ones. A reviewer sees a
small new file (one document per workload, only the lowered requests) and one added line
in ``kustomization.yaml``; a later right-sizing edits the same file.

The change goes through :func:`portal.proposals.propose.propose` as the signed-in person,
with the p95 figures, the window, the saving and a link to the cost page as evidence; the
review's cost check shows the saving as its cost delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from portal.auth.identity import Identity
from portal.auth.tokens import SERVICE_NAME, service_owner
from portal.changes.edits import Edit
from portal.changes.gitops import gitops_unavailable
from portal.changes.overlay_patches import FileReader, OverlayRefusedError, kustomization_listing
from portal.changes.yaml_objects import Target
from portal.cost.deployed import gather_advice, overlay_path, usage_window
from portal.cost.model import cents
from portal.cost.rightsizing import DEFAULT_POLICY, WINDOW_DAYS, Recommendation, quantity
from portal.cost.service_routes import DEPLOYED, ServiceCostDep, may_propose
from portal.db import SessionDep
from portal.deps import ChangesDep, SettingsDep
from portal.integrations.git import GitError
from portal.proposals.evidence import EvidenceItem
from portal.proposals.propose import Proposal, ProposalRefusedError, propose
from portal.ui.render import error_page
from portal.yaml_source import YamlStream

router = APIRouter(include_in_schema=False)
PATCH_FILE = "right-sizing.yaml"
_HEADER = (
    "# Requests lowered to measured use: p95 over {days} days + {headroom}% headroom,\n"
    "# proposed from the portal's cost page (/cost/{service}). Listed last in this\n"
    "# overlay's patches, so it wins over earlier ones; a later right-sizing edits it.\n"
)


class RightSizingRefusedError(Exception):
    """No change can be proposed; the message says why, for a person."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


Workload = tuple[str, str]  # (kind, metadata.name)


def _requests(
    recommendations: Sequence[Recommendation],
) -> dict[Workload, dict[str, dict[str, str]]]:
    """Return the lowered requests per workload and container, as Kubernetes quantities."""
    found: dict[Workload, dict[str, dict[str, str]]] = {}
    for item in recommendations:
        assert item.deployed is not None  # only deployed containers are ever proposed
        lowered: dict[str, str] = {
            advice.resource: quantity(advice.resource, advice.recommended)
            for advice in item.advice
            if advice.recommended is not None
        }
        workload = (item.deployed.kind, item.deployed.name)
        found.setdefault(workload, {})[item.container] = lowered
    return found


def _patch(containers: dict[str, dict[str, str]]) -> dict[str, Any]:
    listed = [
        {"name": name, "resources": {"requests": requests}} for name, requests in containers.items()
    ]
    return {"spec": {"template": {"spec": {"containers": listed}}}}


class _IndentedDumper(yaml.SafeDumper):
    """Indents list items under their key, as Kubernetes manifests are usually written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        """Never write a block sequence indentless."""
        super().increase_indent(flow, False)


def _document(workload: Workload, containers: dict[str, dict[str, str]]) -> str:
    kind, name = workload
    # Deployments, StatefulSets and DaemonSets (the kinds right-sized) are all apps/v1.
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}}
    return yaml.dump(
        {**body, **_patch(containers)},
        Dumper=_IndentedDumper,
        sort_keys=False,
        default_flow_style=False,
    )


def _objects(text: str) -> set[Workload]:
    stream = YamlStream(text)
    found = set()
    for document in stream:
        data = document.data
        if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
            found.add((str(data.get("kind")), str(data["metadata"].get("name"))))
    return found


def right_sizing_edits(
    repo: FileReader,
    base: str,
    service: str,
    environment: str,
    recommendations: Sequence[Recommendation],
) -> list[Edit]:
    """Return the edits lowering the requests of ``recommendations`` in one overlay."""
    overlay = overlay_path(service, environment)
    patch_path = f"{overlay}/{PATCH_FILE}"
    files = repo.list_files(base, overlay)
    workloads = _requests(recommendations)
    edits: list[Edit] = []
    if patch_path in files:
        text = repo.read_file(base, patch_path).decode("utf-8", "replace")
        present = _objects(text)
        missing = [w for w in workloads if w not in present]
        if missing:
            added = "---\n".join(_document(w, workloads[w]) for w in missing)
            edits.append(Edit(patch_path, content=f"{text.rstrip()}\n---\n{added}"))
        for workload in (w for w in workloads if w in present):
            target = Target(workload[0], workload[1])
            edits.append(
                Edit(patch_path, None, "strategic-merge", target, _patch(workloads[workload]))
            )
    else:
        headroom = int(DEFAULT_POLICY.headroom * 100)
        header = _HEADER.format(days=WINDOW_DAYS, headroom=headroom, service=service)
        documents = "---\n".join(_document(w, containers) for w, containers in workloads.items())
        edits.append(Edit(patch_path, content=header + documents))
    try:
        listing = kustomization_listing(repo, base, overlay, files, PATCH_FILE)
    except OverlayRefusedError as exc:
        raise RightSizingRefusedError(str(exc)) from None
    return [*edits, *([listing] if listing else [])]


def _figures(item: Recommendation) -> str:
    """Say what changes in one container: ``CPU 500m -> 70m (p95 58m), memory ...``."""
    said = []
    for advice in item.advice:
        if advice.current is None or advice.p95 is None:
            continue
        resource = "CPU" if advice.resource == "cpu" else "memory"
        new = advice.recommended
        said.append(
            f"{resource} {quantity(advice.resource, advice.current)} -> "
            f"{quantity(advice.resource, new) if new is not None else 'unchanged'} "
            f"(p95 {quantity(advice.resource, advice.p95)})"
        )
    return ", ".join(said)


def _texts(
    service: str, environment: str, chosen: Sequence[Recommendation], window: str, link: str
) -> tuple[str, str, list[EvidenceItem]]:
    """Return the change's title, reason and evidence."""
    currency = chosen[0].currency
    saving = cents(sum((item.monthly_saving for item in chosen), Decimal(0)))
    headroom = int(DEFAULT_POLICY.headroom * 100)
    lines = []
    for item in chosen:
        assert item.deployed is not None
        replicas = f"{item.deployed.replicas} replicas"
        if item.deployed.replicas_note:
            replicas += f", {item.deployed.replicas_note}"
        workload = f"{item.deployed.kind}/{item.deployed.name}"
        lines.append(f"- {item.container} ({workload}, {replicas}): {_figures(item)}")
    reason = (
        f"{service} in {environment} asks for more than it used. New request = p95 usage "
        f"over {window} + {headroom}% headroom, rounded up (CPU to 10m, memory to 1Mi); "
        "a request is lowered only by 10% or more.\n"
        + "\n".join(lines)
        + f"\nSaving: {saving} {currency}/month (replicas x 730 h x the {environment} prices)."
    )
    evidence = [
        EvidenceItem(f"p95 usage of {item.container}, {window}", text=_figures(item))
        for item in chosen
    ]
    evidence.append(EvidenceItem("usage window", text=f"{window}: p95 of the usage series"))
    per_container = "; ".join(f"{i.container}: {cents(i.monthly_saving)}" for i in chosen)
    evidence.append(
        EvidenceItem("monthly saving", text=f"{saving} {currency}/month ({per_container})")
    )
    evidence.append(EvidenceItem("cost page", url=link))
    title = f"Right-size {service} in {environment}: save {saving} {currency}/month"
    return title, reason, evidence


Environment = Annotated[str, Form()]
Container = Annotated[str, Form()]


def _refused(request: Request, message: str, status: int) -> Response:
    heading = {401: "Sign in to propose", 403: "Not allowed"}.get(status, "Nothing to propose")
    return error_page(request, heading, message, status)


@router.post("/cost/{service}/right-size", response_class=Response)
def propose_right_sizing(
    request: Request,
    service: str,
    session: SessionDep,
    changes: ChangesDep,
    settings: SettingsDep,
    runtime: ServiceCostDep,
    environment: Environment = "",
    container: Container = "",
) -> Response:
    """Recompute the recommendation for ``environment`` and propose it as a change (303)."""
    identity: Identity | None = request.state.identity
    if identity is None:
        return _refused(request, "Sign in to propose a change.", 401)
    if not SERVICE_NAME.fullmatch(service):
        return _refused(request, f"{service!r} is not a service name.", 404)
    owner = service_owner(session, service)
    if not may_propose(identity, owner, settings.admin_group):
        who = f"members of {owner} (which owns {service})" if owner else "a catalog owner"
        return _refused(
            request, f"Only {who} or {settings.admin_group} can propose changes to {service}.", 403
        )
    try:
        repo = changes.request_gitops()
        base = repo.refresh()
        deployed = DEPLOYED.get(repo, service, base)
        advice = gather_advice(runtime.usage_metrics, runtime.prices, deployed, runtime.today())
        chosen = _chosen(advice.recommendations, advice.reason, environment, container)
        edits = right_sizing_edits(repo, base, service, environment, chosen)
        start, end = usage_window(runtime.today())
        window = f"{start.date()} to {end.date()} ({WINDOW_DAYS} days)"
        link = f"{str(request.base_url).rstrip('/')}/cost/{service}"
        title, reason, evidence = _texts(service, environment, chosen, window, link)
        change = propose(
            session, repo, settings, identity, Proposal(service, title, reason, edits, evidence)
        )
    except RightSizingRefusedError as exc:
        return _refused(request, str(exc), exc.status)
    except ProposalRefusedError as exc:
        details = "; ".join(f"{name}: {message}" for name, message in exc.errors.items())
        return _refused(request, f"{exc.message}{': ' + details if details else ''}", exc.status)
    except GitError as exc:
        return error_page(request, "GitOps repository unavailable", gitops_unavailable(exc), 503)
    return RedirectResponse(f"/reviews/{change.id}", status_code=303)


def _chosen(
    recommendations: Sequence[Recommendation], reason: str | None, environment: str, container: str
) -> list[Recommendation]:
    """Return the recommendations to propose, or raise why there are none."""
    if reason is not None:
        raise RightSizingRefusedError(f"No recommendation: {reason}.")
    if not environment:
        raise RightSizingRefusedError("Say which environment to right-size (environment).")
    mine = [
        item
        for item in recommendations
        if item.environment == environment and (not container or item.container == container)
    ]
    chosen = [item for item in mine if item.proposed]
    if chosen:
        return chosen
    what = f"{container} in {environment}" if container else environment
    why = (
        "; ".join(
            f"{item.container}: {item.reason or ', '.join(a.reason for a in item.advice)}"
            for item in mine
        )
        or "no such container on main"
    )
    raise RightSizingRefusedError(f"No recommendation for {what}: {why}.")
