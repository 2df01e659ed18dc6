"""``portal templates list`` and ``portal scaffold``: the same functions the web routes call."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from portal.changes.models import ChangeStatus
from portal.changes.store import checks_of, get_change
from portal.config import Settings
from portal.db import make_engine, migrate
from portal.integrations import copier
from portal.review.checks import CheckStatus
from portal.scaffold.jobs import process_change
from portal.scaffold.registry.from_git import unregister
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.request import ScaffoldRequestError, request_scaffold
from portal.scaffold.runtime import ScaffoldRuntime

# Exit codes of `portal scaffold`; 0 is a change ready for review with no failed check.
FAILED = 1
REFUSED = 2
BLOCKING = frozenset({CheckStatus.FAILED.value, CheckStatus.ERROR.value})

templates_app = typer.Typer(help="Templates the portal offers.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)


@templates_app.command("list")
def templates_list() -> None:
    """List the registered templates."""
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        runtime = ScaffoldRuntime(engine, settings)
        table = Table(title="Templates")
        for column in ("name", "version", "title", "owner", "from"):
            table.add_column(column)
        registry = runtime.context.registry
        for template in registry.all():
            info = template.info
            table.add_row(info.name, info.version, info.title, info.owner, template.origin)
        console.print(table)
        for name, reason in sorted(registry.problems.items()):
            errors.print(f"[yellow]{name}[/yellow] is not offered: {reason}", highlight=False)
    finally:
        engine.dispose()


@templates_app.command("register")
def templates_register(
    url: Annotated[str, typer.Argument(help="Git URL of a Copier template (no credentials).")],
    ref: Annotated[str, typer.Option(help="Tag or branch; the commit it has now is pinned.")],
    name: Annotated[str, typer.Option(help="Template name (default: the URL's last part).")] = "",
    by: Annotated[str, typer.Option(help="Who registers it (default: your login name).")] = "",
) -> None:
    """Register (or re-pin) a Copier template by git URL; exit 1 when it is refused."""
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        registry = ScaffoldRuntime(engine, settings).context.registry
        who = by or getpass.getuser()
        with Session(engine) as session:
            try:
                template = registry.register(
                    session,
                    url,
                    ref,
                    name or None,
                    f"user:default/{who}" if ":" not in who else who,
                )
            except TemplateError as exc:
                errors.print(f"[red]refused[/red]: {exc}", highlight=False)
                raise typer.Exit(1) from exc
        info = template.info
        console.print(f"registered {info.name} {info.version} at commit {template.vcs_ref[:12]}")
    finally:
        engine.dispose()


@templates_app.command("unregister")
def templates_unregister(
    name: Annotated[str, typer.Argument(help="Name of a template registered by git URL.")],
) -> None:
    """Stop offering a registered template; exit 1 when there is none of that name."""
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        with Session(engine) as session:
            if not unregister(session, name):
                errors.print(f"no registered template {name}", highlight=False)
                raise typer.Exit(1)
        console.print(f"unregistered {name}")
    finally:
        engine.dispose()


def _parse_sets(values: list[str]) -> dict[str, object]:
    answers: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="--set")
        # YAML gives lists and numbers (`environments=[dev, prod]`, `port=9000`).
        answers[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return answers


def scaffold(
    template: Annotated[str, typer.Argument(help="Template name (see `portal templates list`).")],
    name: Annotated[str, typer.Option(help="Service name (DNS-1123 label).")],
    owner: Annotated[str, typer.Option(help="Owning catalog Group, e.g. team-a.")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="An answer, key=value (repeatable).")
    ] = None,
    system: Annotated[str, typer.Option(help="Catalog System (optional).")] = "",
    requester: Annotated[
        str, typer.Option(help="Catalog User requesting it (default: your login name).")
    ] = "",
) -> None:
    """Render a template, commit it on scaffold/NAME and run the checks.

    Exit 0 when the change is ready for review with no failed check (warnings allowed),
    1 when a check failed or could not run (error) or the change failed, 2 when the
    request was refused and nothing was written (a bad name or owner, an unknown template,
    a refused answer).
    """
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        runtime = ScaffoldRuntime(engine, settings)
        answers = {**_parse_sets(set_ or []), "name": name, "owner": owner, "system": system}
        who = requester or getpass.getuser()
        with Session(engine) as session:
            try:
                change = request_scaffold(
                    session,
                    runtime.context.registry,
                    runtime.context.gitops(),
                    template,
                    answers,
                    f"user:default/{who}" if ":" not in who else who,
                    claimed_by=runtime.context.worker_id,
                    environments=runtime.environments(),
                )
            except ScaffoldRequestError as exc:
                for field, message in exc.errors.items():
                    errors.print(f"[red]{field}[/red]: {message}", highlight=False)
                raise typer.Exit(REFUSED) from exc
            change_id = change.id
        status = process_change(runtime.context, change_id)
        with Session(engine) as session:
            done = get_change(session, change_id)
            if done is None:  # deleted meanwhile by another process
                raise typer.Exit(1)
            table = Table(title=f"Change {change_id}: {status.value}")
            for column in ("check", "status", "summary"):
                table.add_column(column)
            runs = checks_of(session, change_id)
            for run in runs:
                table.add_row(run.name, run.status, run.summary)
            console.print(table)
            console.print(f"branch {done.branch} commit {done.commit_sha}")
            if done.error:
                errors.print(f"[red]failed[/red]: {done.error}", highlight=False)
                raise typer.Exit(FAILED)
            blocking = [run.name for run in runs if run.status in BLOCKING]
            if blocking:
                shown = ", ".join(blocking)
                errors.print(f"[red]checks not passed[/red]: {shown}", highlight=False)
                raise typer.Exit(FAILED)
            if status != ChangeStatus.READY:  # e.g. taken over and decided meanwhile
                raise typer.Exit(FAILED)
    finally:
        copier.shutdown()
        engine.dispose()
