"""``portal templates update``: propose a template update for a fleet, with a progress bar.

The same function as ``POST /api/templates/{name}/updates`` makes one change per service;
each is then rendered (``copier update``) and checked in this process, one after another,
while the bar says how far the batch is. The requester is a catalog User (default: the
login name) and needs what the API needs: to be a platform admin, or a member of the team
owning every service named.
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlmodel import Session

from portal.auth.identity import identity_from_catalog
from portal.config import Settings
from portal.db import make_engine, migrate
from portal.fleet.batches import progress
from portal.fleet.models import UpdateBatch
from portal.fleet.propose import UpdateRefusedError, propose_updates
from portal.integrations import copier
from portal.integrations.git import GitError
from portal.scaffold.jobs import process_change
from portal.scaffold.runtime import ScaffoldRuntime

# Exit codes, as `portal scaffold`: 0 every change ready, 1 any conflicted or failed, 2 refused.
FAILED = 1
REFUSED = 2
console = Console()
errors = Console(stderr=True)


def _requester(requester: str) -> str:
    who = requester or getpass.getuser()
    return who if ":" in who else f"user:default/{who}"


def templates_update(
    name: Annotated[str, typer.Argument(help="Template name (see `portal templates list`).")],
    to: Annotated[str, typer.Option("--to", help="The version (tag) to update to.")],
    service: Annotated[
        list[str] | None,
        typer.Option("--service", help="A service to update (repeatable; default: all)."),
    ] = None,
    requester: Annotated[
        str, typer.Option(help="Catalog User requesting it (default: your login name).")
    ] = "",
) -> None:
    """Propose updating a template's services to a version: one change per service.

    Exit 0 when every change is ready with no conflict, 1 when one is conflicted or
    failed, 2 when the request was refused and nothing was written.
    """
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        runtime = ScaffoldRuntime(engine, settings)
        identity = identity_from_catalog(engine, _requester(requester))
        if identity is None:
            errors.print(f"[red]requester[/red]: {_requester(requester)} is not a catalog User")
            raise typer.Exit(REFUSED)
        template = runtime.context.registry.get(name)
        if template is None:
            errors.print(f"[red]template[/red]: no template {name}", highlight=False)
            raise typer.Exit(REFUSED)
        with Session(engine) as session:
            try:
                batch = propose_updates(
                    session,
                    runtime.context.gitops(),
                    template,
                    identity,
                    settings.admin_group,
                    to_ref=to,
                    services=service,
                )
            except UpdateRefusedError as exc:
                for field, message in (exc.errors or {"request": exc.message}).items():
                    errors.print(f"[red]{field}[/red]: {message}", highlight=False)
                raise typer.Exit(REFUSED) from exc
            except GitError as exc:
                errors.print(f"[red]GitOps repository[/red]: {exc}", highlight=False)
                raise typer.Exit(FAILED) from exc
            batch_id, changes = batch.id, dict(batch.changes)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"{name} -> {to}", total=len(changes))
            for service_name, change_id in changes.items():
                bar.update(task, description=f"{service_name}: updating and checking")
                process_change(runtime.context, change_id)
                bar.advance(task)
            bar.update(task, description=f"{name} -> {to}: done")
        with Session(engine) as session:
            found = progress(session, session.get(UpdateBatch, batch_id) or batch)
        table = Table(title=f"Batch {batch_id} ({name} -> {to})")
        for column in ("service", "state", "change", "detail"):
            table.add_column(column)
        for entry in found.services:
            table.add_row(entry.service, entry.state, entry.change_id or "", entry.detail)
        console.print(table)
        if any(entry.state in ("conflicted", "failed") for entry in found.services):
            raise typer.Exit(FAILED)
    finally:
        copier.shutdown()
        engine.dispose()
