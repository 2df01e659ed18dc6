"""``portal slo generate`` and ``portal slo validate``: thin wrappers over ``generate``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.generate import (
    GeneratedFile,
    GenerateOptions,
    OutputFormat,
    generate,
    read_sources,
    resolve_sources,
    write_outputs,
)
from portal.slo.compiler.rules import DEFAULT_SLOTH_VERSION, RuleOptions

slo_app = typer.Typer(
    help="SLOs as code: Sloth-compatible Prometheus rules from SLO specs.",
    no_args_is_help=True,
)

Paths = Annotated[
    list[Path],
    typer.Argument(help="SLO spec files or folders (Sloth, Sloth CRD, OpenSLO v1, Pyrra)."),
]
Period = Annotated[
    str,
    typer.Option(
        help="SLO period for specs without one (windows from an AlertWindows file, else "
        "scaled as Pyrra does)."
    ),
]
Windows = Annotated[
    Path | None,
    typer.Option(help="AlertWindows file or folder; replaces the built-in 30d and 28d windows."),
]
ExtraLabels = Annotated[
    list[str] | None,
    typer.Option("--extra-label", "-l", help="A label added to every rule, key=value."),
]


def _labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{item!r}: expected key=value", param_hint="--extra-label")
        labels[name] = value
    return labels


def _fail(errors: InvalidSpecError) -> typer.Exit:
    for error in errors.errors:
        typer.echo(f"error: {error}", err=True)
    typer.echo(f"{len(errors.errors)} error(s)", err=True)
    return typer.Exit(1)


@slo_app.command("generate")
def generate_command(
    paths: Paths,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default: print to stdout)."),
    ] = None,
    format_: Annotated[
        OutputFormat,
        typer.Option("--format", help="prometheus: a rule file; operator: a PrometheusRule."),
    ] = OutputFormat.PROMETHEUS,
    windows: Windows = None,
    period: Period = "30d",
    extra_label: ExtraLabels = None,
    disable_alerts: Annotated[bool, typer.Option(help="No alerting rules.")] = False,
    disable_recordings: Annotated[bool, typer.Option(help="No recording rules.")] = False,
    disable_optimized_rules: Annotated[
        bool, typer.Option(help="Compute the period SLI from the query, not from the 5m SLI.")
    ] = False,
    tests: Annotated[
        bool, typer.Option(help="Also write a promtool unit test file per SLO (needs --out).")
    ] = False,
    sloth_version: Annotated[
        str, typer.Option(help="Value of the sloth_version label.")
    ] = DEFAULT_SLOTH_VERSION,
    zero_traffic_guard: Annotated[
        bool, typer.Option(help="No NaN error ratio when there are no requests.")
    ] = False,
    error_query_fallback: Annotated[
        bool, typer.Option(help="'or on() vector(0)' on error queries matching no series yet.")
    ] = False,
    inhibit_ticket: Annotated[
        bool, typer.Option(help="No ticket alert while the page alert fires for the same SLO.")
    ] = False,
) -> None:
    """Generate rules: one file per service (one YAML document each); exit 1 on bad specs."""
    if tests and out is None:
        raise typer.BadParameter("--tests writes files: give --out DIR", param_hint="--tests")
    if tests and format_ is not OutputFormat.PROMETHEUS:
        raise typer.BadParameter("promtool tests need --format prometheus", param_hint="--tests")
    options = GenerateOptions(
        format=format_,
        period=period,
        windows=windows,
        extra_labels=_labels(extra_label or []),
        rules=RuleOptions(
            sloth_version=sloth_version,
            disable_alerts=disable_alerts,
            disable_recordings=disable_recordings,
            optimized=not disable_optimized_rules,
            zero_traffic_guard=zero_traffic_guard,
            error_query_fallback=error_query_fallback,
            inhibit_ticket=inhibit_ticket,
        ),
        tests=tests,
    )
    try:
        outputs = generate(paths, options)
    except InvalidSpecError as errors:
        raise _fail(errors) from errors
    if out is None:
        _print(outputs)
        return
    for path in write_outputs(outputs, out):
        typer.echo(str(path))


def _print(outputs: list[GeneratedFile]) -> None:
    for index, output in enumerate(outputs):
        if index:
            sys.stdout.write("---\n")
        sys.stdout.write(output.text)
    if len(outputs) > 1:
        typer.echo(
            f"note: {len(outputs)} documents printed; Prometheus reads only the first document "
            "of a rule file: use --out DIR for one file per service",
            err=True,
        )


@slo_app.command("validate")
def validate_command(
    paths: Paths,
    windows: Windows = None,
    period: Period = "30d",
) -> None:
    """Check each spec file on its own, as Sloth does; exit 1 and list every error."""
    options = GenerateOptions(period=period, windows=windows)
    try:
        sources = read_sources(paths)
    except InvalidSpecError as errors:
        raise _fail(errors) from errors
    found: list[SpecError] = []
    count = 0
    for name, text in sources.items():
        try:
            count += len(resolve_sources({name: text}, options))
        except InvalidSpecError as errors:
            found.extend(errors.errors)
    if found:
        raise _fail(InvalidSpecError(found))
    typer.echo(f"{count} SLO(s) in {len(sources)} file(s): valid")
