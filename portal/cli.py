"""The ``portal`` command line: thin wrappers over the functions the web routes call."""

from __future__ import annotations

import ipaddress
import signal
import socket
from contextlib import ExitStack
from types import FrameType
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.catalog.models import ImportReport
from portal.config import AuthMode, Settings
from portal.datadir_lock import DataDirInUseError, hold_data_dir
from portal.db import make_engine, migrate
from portal.fleet.cli import templates_update
from portal.integrations.git import GitError
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.processes import redact_credentials
from portal.scaffold.cli import scaffold, templates_app
from portal.slo.cli import slo_app

app = typer.Typer(help="Platform portal: catalog, templates, reviews.", no_args_is_help=True)
catalog_app = typer.Typer(help="Work with the software catalog.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
templates_app.command("update")(templates_update)
app.add_typer(templates_app, name="templates")
app.add_typer(slo_app, name="slo")
app.command("scaffold")(scaffold)
console = Console()
errors = Console(stderr=True)


def _print_report(report: ImportReport) -> None:
    table = Table(title="Catalog import", show_lines=False)
    table.add_column("kind")
    table.add_column("entities", justify="right")
    for kind, count in sorted(report.by_kind.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(
        f"{report.sources_read} file(s) read: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.orphaned} orphaned"
    )
    for problem in report.problems:
        errors.print(f"[red]problem[/red] {problem}", highlight=False, markup=True)


def is_loopback(host: str) -> bool:
    """Return True when ``host`` only listens on the loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


def initialise(settings: Settings, *, gitops: bool = False) -> ImportReport | None:
    """Create the data dir, apply migrations, import the catalog and (optionally) set up GitOps.

    With ``gitops``, the GitOps remote (a local bare repository unless
    ``PORTAL_GITOPS_REMOTE`` is set) and the portal's clone of it are created or refreshed.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_secret_key()
    if gitops:
        bootstrap_gitops(settings)
    engine = make_engine(settings)
    try:
        migrate(engine)
        if not settings.catalog_paths:
            return None
        with Session(engine) as session:
            return import_locations(session, settings.catalog_paths, settings)
    finally:
        engine.dispose()


@app.command()
def init() -> None:
    """Create the data directory and GitOps repository, apply migrations, import the catalog."""
    settings = Settings()
    try:
        report = initialise(settings, gitops=True)
    except GitError as exc:
        errors.print(
            f"GitOps repository: {redact_credentials(str(exc))}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    console.print(f"Data directory ready: {settings.data_dir}")
    remote = settings.gitops_remote or str(settings.data_dir / "gitops" / "remote.git")
    console.print(
        f"GitOps repository: {redact_credentials(remote)} (branch {settings.gitops_branch})",
        highlight=False,
        soft_wrap=True,
    )
    if report is not None:
        _print_report(report)
        if report.problems:
            raise typer.Exit(1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the portal (migrations are applied on start)."""
    import uvicorn

    from portal.models.local import local_mlflow
    from portal.serving import app_for_serving
    from portal.slo.local import local_prometheus

    settings = Settings()
    if settings.auth_mode is AuthMode.LOCAL and not is_loopback(host):
        errors.print(
            f"Refusing to listen on {host}: local sign-in lets anyone pick a user, so it only "
            "runs on a loopback address. Set PORTAL_AUTH_MODE=trusted-header behind an "
            "authenticating proxy to serve other hosts."
        )
        raise typer.Exit(2)
    with ExitStack() as stack:
        try:
            stack.enter_context(hold_data_dir(settings.data_dir))
        except DataDirInUseError as exc:
            errors.print(f"Refusing to serve: {exc}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(3) from exc
        # uvicorn re-raises the SIGTERM or SIGINT it stopped on. Left to Python, SIGTERM
        # ends the process at once, before the local Prometheus below is stopped, and
        # Ctrl-C ends as a KeyboardInterrupt ("Aborted!", exit 1) or a normal return
        # depending on asyncio's timing. Both leave through this block and exit 0.
        for stop_signal in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop_signal, _exit_on_stop_signal)
        # Without PORTAL_PROMETHEUS_URL, a local Prometheus runs as long as the portal does.
        served = stack.enter_context(
            local_prometheus(settings, host=host, port=port, say=console.out)
        )
        # Without PORTAL_MLFLOW_URL, the local MLflow of `make tools` likewise.
        served = stack.enter_context(local_mlflow(served, say=console.out))
        if served.template_public_base_url is None:
            # Services record their bundled template's URL: unset, it is this portal's own.
            served = served.model_copy(
                update={"template_public_base_url": served_template_base_url(host, port)}
            )
        uvicorn.run(app_for_serving(served), host=host, port=port, log_level="info")


def served_template_base_url(host: str, port: int) -> str:
    """Return where ``portal serve --host host --port port`` serves the template repositories."""
    address = f"[{host}]" if ":" in host else host
    return f"http://{address}:{port}/templates.git"


def _exit_on_stop_signal(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


@catalog_app.command("import")
def catalog_import(
    paths: Annotated[
        list[str],
        typer.Argument(help="Files, folders or git+URL#REF:PATH locations to import."),
    ],
) -> None:
    """Import catalog-info YAML (following Locations); exits 1 if any document was rejected."""
    settings = Settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        with Session(engine) as session:
            report = import_locations(session, paths, settings)
    finally:
        engine.dispose()
    _print_report(report)
    if report.problems:
        errors.print("Valid entities were stored; fix the problems above and import again.")
        raise typer.Exit(1)
