"""Turning a requested scaffold into a reviewed branch: render, commit, check.

Each step is idempotent so a change interrupted by a crash or restart is simply run again:
if its branch was already pushed, rendering is skipped and the checks run on the branch.
The change ends ``ready`` (checks stored, even failing ones: the reviewer decides) or
``failed`` with the reason; it is never left half-done.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session

from portal.catalog.refs import RefError, parse_ref
from portal.catalog.store import get_entity
from portal.config import Settings
from portal.integrations.copier import Renderer
from portal.integrations.gitops import GitOpsRepo
from portal.review.checks import CheckTools, run_manifest_checks
from portal.review.collisions import cluster_tree
from portal.review.cost import PriceSheet
from portal.review.models import Change, ChangeStatus, CheckRun
from portal.review.store import claim_next, finish, replace_checks, set_step
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.registry import TemplateRegistry
from portal.scaffold.scratch import scratch_folder

logger = logging.getLogger(__name__)


@dataclass
class ScaffoldContext:
    """Everything a job needs; built once per app (and replaced by fakes in unit tests)."""

    engine: Engine
    settings: Settings
    registry: TemplateRegistry
    gitops: Callable[[], GitOpsRepo]
    renderer: Renderer
    price_sheet: PriceSheet = field(default_factory=PriceSheet)
    check_tools: CheckTools = field(default_factory=CheckTools)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


def environments_of(change: Change, settings: Settings) -> list[str]:
    """Return the environments a change deploys to (the template's answer, else all)."""
    chosen = change.answers.get("environments")
    if isinstance(chosen, list) and chosen:
        return [env for env in settings.environments if env in chosen]
    return list(settings.environments)


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

    Return the rendered service folder.
    """
    template = ctx.registry.get(change.template)
    if template is None:
        raise RuntimeError(f"template {change.template} is no longer registered")
    service_dir = workdir / "services" / change.service
    result = ctx.renderer.render(template.src, template.vcs_ref, change.answers, service_dir)
    files = {
        f"services/{change.service}/{path}": (service_dir / path).read_bytes()
        for path in result.files
    }
    files.update(flux_kustomizations(change.service, environments_of(change, ctx.settings)))
    executable = [
        f"services/{change.service}/{path}"
        for path in result.files
        if os.access(service_dir / path, os.X_OK)
    ]
    author = (change.requester_ref, ctx.settings.git_author_email)
    repo, message = ctx.gitops(), _commit_message(change)
    if head is None:
        change.commit_sha = repo.create_branch(
            change.branch, files, message, author, executable=executable
        )
    else:
        change.commit_sha = repo.update_branch(
            change.branch, head, files, message, author, executable=executable
        )
    return service_dir


def _checkout_existing(ctx: ScaffoldContext, change: Change, head: str, workdir: Path) -> Path:
    """Export an already pushed branch head (a re-run after a crash) for the checks."""
    change.commit_sha = head
    ctx.gitops().export_tree(head, workdir)
    return workdir / "services" / change.service


def process_change(ctx: ScaffoldContext, change_id: str) -> ChangeStatus:
    """Run the remaining steps of one claimed change and return its final status."""
    with Session(ctx.engine) as session:
        change = session.get(Change, change_id)
        if change is None:
            return ChangeStatus.FAILED
        try:
            with scratch_folder(ctx.settings.resolved_scratch_dir()) as workdir:
                head = ctx.gitops().head_of(change.branch)
                if head is not None and revision_of(ctx.gitops().message_of(head)) >= (
                    change.revision
                ):
                    service_dir = _checkout_existing(ctx, change, head, workdir)
                    set_step(change, "render", "done", "branch already pushed")
                else:
                    set_step(change, "render", "running")
                    session.add(change)
                    session.commit()
                    service_dir = _render_and_commit(ctx, change, workdir, head)
                    set_step(change, "render", "done")
                set_step(change, "commit", "done", change.commit_sha or "")
                change.status = ChangeStatus.CHECKING
                set_step(change, "checks", "running")
                session.add(change)
                session.commit()
                results = run_manifest_checks(
                    service_dir,
                    environments_of(change, ctx.settings),
                    _owner_exists(ctx.engine),
                    ctx.price_sheet,
                    ctx.check_tools,
                    cluster_files=partial(cluster_tree, ctx.gitops(), change.commit_sha or ""),
                )
            runs = [
                CheckRun(
                    change_id=change.id,
                    name=result.name,
                    status=result.status.value,
                    summary=result.summary,
                    findings=[finding.model_dump(mode="json") for finding in result.findings],
                    duration_ms=result.duration_ms,
                )
                for result in results
            ]
            replace_checks(session, change.id, runs)
            set_step(change, "checks", "done", f"{len(runs)} checks")
            finish(session, change, ChangeStatus.READY)
        except Exception as exc:  # the change must end in a state, whatever failed
            logger.exception("scaffold %s failed", change_id)
            session.rollback()
            change = session.get(Change, change_id)
            if change is None:
                return ChangeStatus.FAILED
            running = [step["name"] for step in change.steps if step["status"] == "running"]
            set_step(change, running[-1] if running else "error", "failed", str(exc))
            finish(session, change, ChangeStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return change.status


def run_pending(ctx: ScaffoldContext, limit: int = 1000) -> int:
    """Process claimable changes one after another until none is left; return how many."""
    done = 0
    while done < limit:
        with Session(ctx.engine) as session:
            change = claim_next(session, ctx.worker_id)
        if change is None:
            return done
        process_change(ctx, change.id)
        done += 1
    return done


class ScaffoldWorker:
    """A background thread of the app that processes changes as they arrive."""

    def __init__(
        self,
        ctx: ScaffoldContext,
        poll_seconds: float = 0.2,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.poll_seconds = poll_seconds
        self.warm_up = warm_up  # run first, in the thread, so starting the app never waits
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="scaffold-worker", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        self._wake.set()

    def stop(self, timeout: float = 30) -> None:
        """Ask the thread to finish its current change and wait for it."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        if self.warm_up is not None:
            try:
                self.warm_up()
            except Exception:  # the first change then does the work itself
                logger.exception("scaffold worker warm-up")
        while not self._stop.is_set():
            try:
                if run_pending(self.ctx, limit=1) == 0:
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()
            except Exception:  # keep the worker alive; the change itself records failures
                logger.exception("scaffold worker loop")
                time.sleep(self.poll_seconds)
