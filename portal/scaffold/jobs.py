"""Turning a requested scaffold into a reviewed branch, in two stages.

The render stage (:func:`render_change`, status ``rendering``) renders the template,
commits and pushes the branch, then hands the change over to the check stage
(:func:`check_change`, status ``checking``), which checks the pushed commit. Background
workers run each stage on its own (:mod:`portal.scaffold.workers`); :func:`process_change`
runs both in one thread.

Each stage is idempotent, so a change interrupted by a crash or restart is simply run again
by its stage: a render whose branch was already pushed (its commit message names the
revision) is not repeated, and the checks run again on the pushed commit, replacing any
earlier results. The change ends ``ready`` (checks stored, even failing ones: the reviewer
decides) or ``failed`` with the reason; it is never left half-done.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from portal.catalog.refs import RefError, parse_ref
from portal.catalog.store import get_entity
from portal.changes.claims import claim_next, finish
from portal.changes.environments import TEMPLATE_VARIABLE as ENVIRONMENTS_VARIABLE
from portal.changes.environments import deployable_environments
from portal.changes.models import UPDATE_KIND, Change, ChangeStatus, CheckRun
from portal.changes.store import audit, replace_checks, set_step
from portal.clock import utcnow
from portal.config import Settings
from portal.integrations.copier import Renderer
from portal.integrations.gitops import Amend, GitOpsRepo
from portal.integrations.gitops_tree import read_files
from portal.review.checks import CheckResult, CheckTools, run_manifest_checks
from portal.review.collisions import cluster_tree
from portal.review.cost_check import export_main_service, tree_price_sheets
from portal.review.flux_sources import SOURCEIGNORE, flux_tree
from portal.scaffold.chaos import chaos_kustomizations, experiments_folder
from portal.scaffold.deploys import commit_deploys, template_deploys
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.images import with_image_automation
from portal.scaffold.layout import cluster_dependencies, services_in_artifact
from portal.scaffold.registry.offered import TemplateRegistry
from portal.scaffold.scratch import scratch_folder
from portal.scaffold.slo_rules import with_slo_rules
from portal.scaffold.updates import update_and_commit, update_message

logger = logging.getLogger(__name__)
# The audit log's actor for what the pipeline itself did (the detail names the worker).
WORKER_ACTOR = "portal"
NOT_DEPLOYED = "no Kubernetes manifests: no Flux wiring, only the checks of its files"


@dataclass
class ScaffoldContext:
    """Everything a job needs; built once per app (and replaced by fakes in unit tests)."""

    engine: Engine
    settings: Settings
    registry: TemplateRegistry
    gitops: Callable[[], GitOpsRepo]
    renderer: Renderer
    check_tools: CheckTools = field(default_factory=CheckTools)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def environments_of(change: Change, offered: Sequence[str]) -> list[str]:
    """Return the environments a change deploys to: the template's answer, else all offered.

    ``offered`` are the GitOps repository's (:func:`deployable_environments`). An answer
    naming one it no longer has is refused, never dropped: its cluster folder is gone.
    """
    chosen = change.answers.get("environments")
    if not isinstance(chosen, list) or not chosen:
        return list(offered)
    if missing := [env for env in chosen if env not in offered]:
        raise RuntimeError(
            f"environments {', '.join(map(str, missing))} have no cluster folder "
            f"(clusters/<env>/) in the GitOps repository; it has {', '.join(offered) or 'none'}"
        )
    return [env for env in offered if env in chosen]


def repository_environments(ctx: ScaffoldContext, ref: str = "main") -> list[str]:
    """Return the environments the GitOps repository offers at ``ref`` (its clusters)."""
    return deployable_environments(ctx.gitops(), ref, ctx.settings.environments)


def _owner_exists(engine: Engine) -> Callable[[str], bool]:
    def exists(ref: str) -> bool:
        try:
            parsed = parse_ref(ref, default_kind="group")
        except RefError:
            return False
        with Session(engine) as session:
            return get_entity(session, parsed.kind, parsed.namespace, parsed.name) is not None

    return exists


def _commit_message(change: Change) -> str:
    answers = "\n".join(f"  {key}: {value!r}" for key, value in sorted(change.answers.items()))
    return (
        f"Scaffold {change.service} from {change.template} {change.template_version}\n\n"
        f"Template: {change.template}\nVersion: {change.template_version}\n"
        f"Requested-by: {change.requester_ref}\nChange: {change.id}\n"
        f"Revision: {change.revision}\nAnswers:\n{answers}\n"
    )


def revision_of(message: str) -> int:
    """Read the ``Revision:`` line of a scaffold commit (commits before revisions: 1)."""
    for line in message.splitlines():
        if line.startswith("Revision: ") and line[10:].strip().isdigit():
            return int(line[10:].strip())
    return 1


def _render_and_commit(
    ctx: ScaffoldContext, change: Change, workdir: Path, head: str | None
) -> Path:
    """Render into ``workdir`` and push the branch (new, or one more revision on ``head``).

    The Flux wiring is committed beside the service only when it deploys
    (:mod:`portal.scaffold.deploys`). Return the rendered service folder.
    """
    template = ctx.registry.get(change.template)
    if template is None:
        raise RuntimeError(f"template {change.template} is no longer registered")
    service_dir = workdir / "services" / change.service
    repo = ctx.gitops()
    base = repo.resolve(repo.main)
    offered = repository_environments(ctx, base)
    # The repository's environments reach the template as data (never an answer): its
    # `environments` question offers them and its overlays are made for them.
    data = {**change.answers, ENVIRONMENTS_VARIABLE: offered}
    result = ctx.renderer.render(
        template.src, template.vcs_ref, data, service_dir, source=template.source
    )
    files = {
        f"services/{change.service}/{path}": (service_dir / path).read_bytes()
        for path in result.files
    }
    amend: dict[str, Amend] = {}
    if template_deploys(template.info, result.files):
        amend[SOURCEIGNORE] = partial(services_in_artifact, change.service)
        environments = environments_of(change, offered)
        clusters = read_files(repo, base, [f"clusters/{env}" for env in environments]).files
        targets = cluster_dependencies(clusters, change.service, environments)
        wiring = flux_kustomizations(change.service, environments, depends_on=targets)
        files.update(with_image_automation(change.service, wiring, files))
        files = with_slo_rules(change.service, files)
        if read_files(repo, base, [experiments_folder(change.template)]).files:
            files.update(chaos_kustomizations(change.service, change.template, environments))
    executable = [
        f"services/{change.service}/{path}"
        for path in result.files
        if os.access(service_dir / path, os.X_OK)
    ]
    author = (change.requester_ref, ctx.settings.git_author_email)
    message = _commit_message(change)
    if head is None:
        change.commit_sha = repo.create_branch(
            change.branch, files, message, author, executable=executable, amend=amend
        )
    else:
        change.commit_sha = repo.update_branch(
            change.branch, head, files, message, author, executable=executable, amend=amend
        )
    return service_dir


def _update_and_commit(ctx: ScaffoldContext, change: Change) -> str:
    """Run ``copier update`` for an update change and push its branch; return the step's detail.

    An update's branch is made once, on the newest main: a conflict it leaves is resolved
    by revising the change (:mod:`portal.fleet.resolve`), never by updating again.
    """
    template = ctx.registry.get(change.template)
    if template is None:
        raise RuntimeError(f"template {change.template} is no longer registered")
    repo = ctx.gitops()
    environments = repository_environments(ctx, repo.resolve(repo.main))
    author = (change.requester_ref, ctx.settings.git_author_email)
    result = update_and_commit(repo, template, change, environments, update_message(change), author)
    moved = f"{result.from_commit} -> {result.to_commit}"
    if result.conflicts:
        return f"{moved}: {len(result.conflicts)} file(s) with conflicts"
    return moved


def render_change(
    ctx: ScaffoldContext, change_id: str, *, keep_claim: bool = False
) -> ChangeStatus:
    """Run the render stage of one claimed change: render, commit and push its branch.

    On success the change is ``checking`` with its commit recorded, and its claim is
    released for the check stage (``keep_claim``: kept, by a caller that checks it next).
    A change that is not ``rendering`` is left as it is. Returns the change's status.
    """
    with Session(ctx.engine) as session:
        change = session.get(Change, change_id)
        if change is None:
            return ChangeStatus.FAILED
        if change.status != ChangeStatus.RENDERING:
            return change.status
        try:
            repo = ctx.gitops()
            head = repo.head_of(change.branch)
            if head is not None and revision_of(repo.message_of(head)) >= change.revision:
                change.commit_sha = head  # pushed before a crash: the render is not repeated
                set_step(change, "render", "done", "branch already pushed")
                audit(session, change.id, WORKER_ACTOR, "rendered", _by(ctx, change, reused=True))
            else:
                set_step(change, "render", "running")
                session.add(change)
                session.commit()
                if change.kind == UPDATE_KIND:
                    detail = _update_and_commit(ctx, change)
                else:
                    with scratch_folder(ctx.settings.resolved_scratch_dir()) as workdir:
                        _render_and_commit(ctx, change, workdir, head)
                    deploys = commit_deploys(repo, change.commit_sha or "", change.service)
                    detail = "" if deploys else NOT_DEPLOYED
                set_step(change, "render", "done", detail)
                audit(session, change.id, WORKER_ACTOR, "rendered", _by(ctx, change))
            set_step(change, "commit", "done", change.commit_sha or "")
            change.status = ChangeStatus.CHECKING
            if keep_claim:
                if change.claimed_by is not None:
                    change.claimed_at = utcnow()  # the checks start now
            else:
                change.claimed_by, change.claimed_at = None, None
            session.add(change)
            session.commit()
        except Exception as exc:  # the change must end in a state, whatever failed
            return _failed(session, change_id, exc)
        return change.status


def check_change(ctx: ScaffoldContext, change_id: str) -> ChangeStatus:
    """Run the check stage of one claimed change: check its pushed commit, store the results.

    The checks run on the commit exported from the GitOps repository (what the reviewer
    approves), without a database session held open. The change ends ``ready``, whatever
    the checks found, or ``failed`` when they could not be run at all. A change that is not
    ``checking`` is left as it is.
    """
    with Session(ctx.engine) as session:
        change = session.get(Change, change_id)
        if change is None:
            return ChangeStatus.FAILED
        if change.status != ChangeStatus.CHECKING:
            return change.status
        set_step(change, "checks", "running")
        session.add(change)
        session.commit()
        service, commit = change.service, change.commit_sha
        model = change.answers.get("model")  # a promotion's or rollback's (portal.models)
        model_change = model if isinstance(model, dict) else None
        template_update = change.kind == UPDATE_KIND
    started = time.perf_counter()
    try:
        if not commit:
            raise RuntimeError("the change has no commit to check")
        environments = environments_of(change, repository_environments(ctx, commit))
        with scratch_folder(ctx.settings.resolved_scratch_dir()) as workdir:
            results = check_commit(
                ctx.gitops(),
                commit,
                service,
                environments,
                _owner_exists(ctx.engine),
                ctx.check_tools,
                workdir,
                model_change,
                template_update=template_update,
            )
    except Exception as exc:
        with Session(ctx.engine) as session:
            return _failed(session, change_id, exc)
    runs = [
        CheckRun(
            change_id=change_id,
            name=result.name,
            environment=result.environment,
            status=result.status.value,
            summary=result.summary,
            findings=[finding.model_dump(mode="json") for finding in result.findings],
            duration_ms=result.duration_ms,
        )
        for result in results
    ]
    with Session(ctx.engine) as session:
        change = session.get(Change, change_id)
        if change is None:
            return ChangeStatus.FAILED
        try:
            replace_checks(session, change_id, runs)
            elapsed = time.perf_counter() - started
            set_step(change, "checks", "done", f"{len(runs)} checks in {elapsed:.1f} s")
            audit(session, change_id, WORKER_ACTOR, "checked", _by(ctx, change))
            finish(session, change, ChangeStatus.READY)
        except Exception as exc:
            return _failed(session, change_id, exc)
        return change.status


def check_commit(
    repo: GitOpsRepo,
    commit: str,
    service: str,
    environments: list[str],
    owner_exists: Callable[[str], bool],
    tools: CheckTools,
    workdir: Path,
    model_change: Mapping[str, Any] | None = None,
    *,
    template_update: bool = False,
) -> list[CheckResult]:
    """Run the checks of ``services/<service>`` at ``commit``, in the empty folder ``workdir``.

    Prices come from the commit's own price sheets (``cost/prices/<env>.yaml``), and the
    cost check compares with the service at the change's base on main: the commit's first
    parent, for a scaffold, a revision and an edit alike. ``model_change`` is the change's
    ``answers["model"]`` (a promotion or rollback), for the model validation check.
    A service that deploys nothing (no Flux wiring, no manifests under ``deploy/``) gets
    only the checks of its files.
    """
    deploys = commit_deploys(repo, commit, service)
    repo.export_tree(commit, workdir / "change", [f"services/{service}"])
    base = repo.parent_of(commit)
    main = export_main_service(repo, base, service, workdir / "main")
    return run_manifest_checks(
        workdir / "change" / "services" / service,
        environments,
        owner_exists,
        tree_price_sheets(repo, commit),
        tools,
        cluster_files=partial(cluster_tree, repo, commit),
        source_files=partial(flux_tree, repo, commit),
        base_source_files=partial(flux_tree, repo, base),
        main=main,
        model_change=model_change,
        deploys=deploys,
        template_update=template_update,
    )


def process_change(ctx: ScaffoldContext, change_id: str) -> ChangeStatus:
    """Run the remaining stages of one change in this thread and return its final status."""
    status = render_change(ctx, change_id, keep_claim=True)
    if status == ChangeStatus.CHECKING:
        status = check_change(ctx, change_id)
    return status


def _by(ctx: ScaffoldContext, change: Change, *, reused: bool = False) -> str:
    commit = (change.commit_sha or "")[:12]
    pushed = "branch already pushed, " if reused else ""
    return f"revision {change.revision}, {pushed}commit {commit} (worker {ctx.worker_id})"


def _failed(session: Session, change_id: str, exc: Exception) -> ChangeStatus:
    """Record why a stage failed: on the step that was running, and as the change's error."""
    logger.error("scaffold %s failed", change_id, exc_info=exc)
    session.rollback()
    change = session.get(Change, change_id)
    if change is None:
        return ChangeStatus.FAILED
    running = [step["name"] for step in change.steps if step["status"] == "running"]
    set_step(change, running[-1] if running else "error", "failed", str(exc))
    finish(session, change, ChangeStatus.FAILED, f"{type(exc).__name__}: {exc}")
    return change.status


def run_pending(ctx: ScaffoldContext, limit: int = 1000) -> int:
    """Run every claimable change through its remaining stages, one after another.

    Returns how many changes were processed; the background stages do the same work
    concurrently (:mod:`portal.scaffold.workers`).
    """
    done = 0
    while done < limit:
        with Session(ctx.engine) as session:
            change = claim_next(session, ctx.worker_id)
        if change is None:
            return done
        process_change(ctx, change.id)
        done += 1
    return done
