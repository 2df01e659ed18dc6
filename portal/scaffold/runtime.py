"""Wiring the scaffold flow into one app: its context, the check tools and the workers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from sqlalchemy import Engine
from sqlmodel import Session

from portal.changes.claims import release_claims
from portal.changes.environments import deployable_environments
from portal.changes.gitops import LazyGitOps
from portal.config import Settings
from portal.deps import from_app_state
from portal.integrations import copier
from portal.integrations.checkov import CheckovError, CheckovFailure, find_checkov
from portal.integrations.checkov_warm import (
    WarmCheckov,
    release_warm_checkov,
    shared_warm_checkov,
)
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.mlflow import MlflowRegistry, mlflow_registry
from portal.integrations.promtool import (
    Promtool,
    PromtoolCli,
    PromtoolNotFoundError,
    PromtoolResult,
)
from portal.integrations.rag_eval import rag_evaluator
from portal.review.checks import CheckTools
from portal.scaffold.jobs import ScaffoldContext
from portal.scaffold.registry.offered import TemplateRegistry
from portal.scaffold.scratch import remove_abandoned
from portal.scaffold.workers import PipelineWorkers, check_worker_count, claim_abandoned
from portal.slo.budget import load_policies


class MissingCheckov:
    """Stands in for checkov when it is not installed, so reviews say so instead of passing."""

    def __init__(self, configured: Path | None) -> None:
        self.configured = configured

    def scan(self, manifests: Mapping[str, str]) -> list[CheckovFailure]:
        """Fail the way a broken tool fails: the check is reported as ``error``."""
        where = f"at {self.configured}" if self.configured else "in .tools/checkov nor on PATH"
        raise CheckovError(f"checkov is not installed {where} (run `make tools`)")


class MissingPromtool:
    """Stands in for promtool when it is not installed: the SLO check says so, as an error."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def check_rules(self, path: Path) -> PromtoolResult:
        """Fail the way a missing tool fails."""
        raise PromtoolNotFoundError(self.reason)

    def test_rules(self, path: Path) -> PromtoolResult:
        """Fail the way a missing tool fails."""
        raise PromtoolNotFoundError(self.reason)


def _promtool(settings: Settings) -> Promtool:
    try:
        return PromtoolCli(settings.promtool_path)
    except PromtoolNotFoundError as exc:
        return MissingPromtool(str(exc))


def check_tools(settings: Settings) -> CheckTools:
    """Build the review checks' tools from the settings."""
    executable = find_checkov(settings.checkov_path)
    checkov = (
        shared_warm_checkov(executable, settings.checkov_skip_checks)
        if executable
        else MissingCheckov(settings.checkov_path)
    )
    return CheckTools(
        k8s_version=settings.kubernetes_version,
        checkov=checkov,
        checkov_errors=frozenset(settings.checkov_error_checks),
        promtool=_promtool(settings),
        budget_policies=partial(load_policies, settings.error_budget_dir),
        max_monthly_cost=Decimal(str(settings.cost_max_monthly_usd)),
        machine_roots=(str(settings.data_dir),),
        rag_evaluator=rag_evaluator(
            settings.resolved_rag_eval_python(), settings.rag_eval_timeout_seconds
        ),
        model_registry=mlflow_registry(settings),
    )


class ScaffoldRuntime:
    """The scaffold context of an app and its optional background worker."""

    def __init__(
        self, engine: Engine, settings: Settings, gitops: Callable[[], GitOpsRepo] | None = None
    ) -> None:
        """Use ``gitops`` (the app's, shared with the review pages), else a clone of its own."""
        self.context = ScaffoldContext(
            engine=engine,
            settings=settings,
            registry=TemplateRegistry.from_settings(settings, engine),
            gitops=gitops if gitops else LazyGitOps(settings),
            renderer=copier.CopierRenderer(
                snapshot_root=settings.data_dir / "templates" / "snapshots"
            ),
            check_tools=check_tools(settings),
        )
        self.worker: PipelineWorkers | None = None

    def start(self) -> None:
        """Release the claims a dead worker left (they resume), then start the workers if enabled.

        Scratch folders a killed portal left behind are removed first. Claims of workers
        that still run, other replicas' included, are left alone.
        """
        remove_abandoned(self.context.settings.resolved_scratch_dir())
        with Session(self.context.engine) as session:
            release_claims(session, claim_abandoned)
        if self.context.settings.run_worker:
            self.worker = PipelineWorkers(
                self.context,
                check_workers=check_worker_count(self.context.settings.check_workers),
                warm_up_render=self.warm_up,
                warm_up_checks=self.warm_up_checks,
            )
            self.worker.start()

    def warm_up(self) -> None:
        """Make the first scaffold as quick as the next ones.

        Starts a Copier worker (importing Copier takes about a second), publishes the
        bundled templates and makes the snapshot of every offered template.
        """
        renderer = self.context.renderer
        if isinstance(renderer, copier.CopierRenderer):
            renderer.warm_up((t.src, t.vcs_ref) for t in self.context.registry.all())

    def warm_up_checks(self) -> None:
        """Start the check tools that are slow to start (checkov) before the first change."""
        checkov = self.context.check_tools.checkov
        if isinstance(checkov, WarmCheckov):
            checkov.start()

    def environments(self, gitops: Callable[[], GitOpsRepo] | None = None) -> list[str] | None:
        """Return the GitOps repository's environments for a form or a request.

        Read through ``gitops`` (a request's bounded clone) or the context's. None when the
        repository cannot be read now (the remote is down or hung): the form then shows the
        templates' own list, and a request is refused for the name check anyway.
        """
        try:
            repo = (gitops or self.context.gitops)()
            return deployable_environments(repo, "main", self.context.settings.environments)
        except GitError:
            return None

    def wake(self) -> None:
        """Tell the workers new work is waiting."""
        if self.worker is not None:
            self.worker.wake()

    def stop(self) -> None:
        """Stop the workers, the render processes, the warm checkov and the registry client."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        copier.release()
        checkov = self.context.check_tools.checkov
        if isinstance(checkov, WarmCheckov):
            release_warm_checkov(checkov)
        registry = self.context.check_tools.model_registry
        if isinstance(registry, MlflowRegistry):
            registry.close()  # its pooled connections, which would outlive the app


ScaffoldDep = Annotated[ScaffoldRuntime, Depends(from_app_state("scaffold", ScaffoldRuntime))]
