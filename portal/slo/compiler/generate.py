"""``generate``: SLO spec files in, one rule file per service (and promtool tests) out.

One file per service and one YAML document per file: Prometheus 2.x and promtool read
only the first document of a rule file, so Sloth's multi-document output silently loses
every service but the first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from portal.slo.compiler.errors import InvalidSpecError, SpecError
from portal.slo.compiler.load import collect_sources
from portal.slo.compiler.promtool_tests import slo_test_file
from portal.slo.compiler.render import prometheus_rule, rule_file
from portal.slo.compiler.resolve import ResolvedSLO, collect_resolved
from portal.slo.compiler.rules import RuleOptions, slo_rule_groups
from portal.slo.compiler.spec import label_name_problems
from portal.slo.compiler.windows import WindowsCatalog, builtin_windows, load_windows

SPEC_SUFFIXES = (".yaml", ".yml")


class OutputFormat(StrEnum):
    """A plain Prometheus rule file, or a Prometheus-Operator PrometheusRule object."""

    PROMETHEUS = "prometheus"
    OPERATOR = "operator"


@dataclass(frozen=True)
class GenerateOptions:
    """Everything ``portal slo generate`` can be told (Sloth's flags and ours)."""

    format: OutputFormat = OutputFormat.PROMETHEUS
    period: str = "30d"
    windows: Path | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    rules: RuleOptions = field(default_factory=RuleOptions)
    tests: bool = False


@dataclass(frozen=True)
class GeneratedFile:
    """One output file: its name (relative to the output folder) and its text."""

    name: str
    text: str
    kind: Literal["rules", "test"]
    service: str


def read_sources(paths: Sequence[str | Path]) -> dict[str, str]:
    """Read the spec files: each path is a file or a folder searched for ``*.yaml``/``*.yml``."""
    sources: dict[str, str] = {}
    errors: list[SpecError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not files:
                errors.append(SpecError(str(path), "no *.yaml or *.yml files in this folder"))
        elif path.is_file():
            files = [path]
        else:
            errors.append(SpecError(str(path), "no such file or folder"))
            files = []
        for file in files:
            try:
                sources[str(file)] = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                errors.append(SpecError(str(file), f"cannot be read: {error}"))
    if errors:
        raise InvalidSpecError(errors)
    return sources


def windows_catalog(options: GenerateOptions) -> WindowsCatalog:
    """Return the custom windows when given, else the built-in ones."""
    return load_windows(options.windows) if options.windows else builtin_windows()


def resolve_sources(sources: Mapping[str, str], options: GenerateOptions) -> list[ResolvedSLO]:
    """Load, validate and resolve specs given as texts; raise InvalidSpecError on any problem."""
    problems = label_name_problems(list(options.extra_labels))
    if problems:
        raise InvalidSpecError(SpecError("--extra-label", problem) for problem in problems)
    catalog = windows_catalog(options)
    specs, errors = collect_sources(sources, catalog)
    slos, more = collect_resolved(
        specs,
        catalog=catalog,
        default_period=options.period,
        extra_labels=options.extra_labels,
    )
    if errors or more:
        order = {name: index for index, name in enumerate(sources)}
        found = sorted([*errors, *more], key=lambda e: (order.get(e.file, -1), e.line or 0))
        raise InvalidSpecError(found)
    return slos


def file_stem(service: str) -> str:
    """Make a file name for a service (anything outside ``[A-Za-z0-9._-]`` becomes ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", service).lstrip(".")
    return stem or "_"


def kubernetes_name(service: str) -> str:
    """Make a DNS-1123 object name for a service's PrometheusRule."""
    name = re.sub(r"[^a-z0-9-]+", "-", service.lower()).strip("-") or "service"
    return f"{name[:240].rstrip('-')}-slos"


def _metadata(slos: Sequence[ResolvedSLO]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": "SLO", "app.kubernetes.io/managed-by": "portal"}
    metas = {id(slo.kubernetes): slo.kubernetes for slo in slos}
    crd = next(iter(metas.values())) if len(metas) == 1 else None
    if crd is None:
        return {"name": kubernetes_name(slos[0].service), "labels": labels}
    metadata: dict[str, Any] = {"name": crd.name}
    if crd.namespace:
        metadata["namespace"] = crd.namespace
    metadata["labels"] = {**labels, **crd.labels}
    if crd.annotations:
        metadata["annotations"] = dict(crd.annotations)
    return metadata


def render_outputs(
    slos: Sequence[ResolvedSLO],
    options: GenerateOptions,
    sources: Sequence[str] = (),
) -> list[GeneratedFile]:
    """Write the rules of resolved SLOs: one file per service, plus tests when asked."""
    if options.tests and options.format is not OutputFormat.PROMETHEUS:
        raise ValueError("promtool tests need the prometheus format (promtool reads rule files)")
    by_service: dict[str, list[ResolvedSLO]] = {}
    for slo in slos:
        by_service.setdefault(slo.service, []).append(slo)
    header = [
        f"Code generated by portal slo generate (rules compatible with Sloth "
        f"{options.rules.sloth_version}). DO NOT EDIT.",
    ]
    if sources:
        header.append("Source: " + ", ".join(sorted({Path(s).name for s in sources})))
    outputs: list[GeneratedFile] = []
    stems: dict[str, str] = {}
    for service, service_slos in by_service.items():
        stem = file_stem(service)
        if stems.setdefault(stem, service) != service:
            raise InvalidSpecError(
                [
                    SpecError(
                        service_slos[0].source,
                        f'service "{service}" and "{stems[stem]}" would write the same file {stem}',
                    )
                ]
            )
        groups = [group for slo in service_slos for group in slo_rule_groups(slo, options.rules)]
        if options.format is OutputFormat.OPERATOR:
            text = prometheus_rule(groups, header, _metadata(service_slos))
            outputs.append(GeneratedFile(f"{stem}.prometheusrule.yaml", text, "rules", service))
            continue
        name = f"{stem}.rules.yaml"
        outputs.append(GeneratedFile(name, rule_file(groups, header), "rules", service))
        if options.tests:
            for slo in service_slos:
                test = slo_test_file(slo, name, options.rules)
                if test is not None:
                    test_name = f"{file_stem(slo.id)}.test.yaml"
                    outputs.append(GeneratedFile(test_name, test, "test", service))
    return outputs


def generate_sources(
    sources: Mapping[str, str], options: GenerateOptions | None = None
) -> list[GeneratedFile]:
    """Generate from spec texts (file name -> YAML); raise InvalidSpecError on any bad spec."""
    options = options or GenerateOptions()
    slos = resolve_sources(sources, options)
    return render_outputs(slos, options, list(sources))


def generate(
    paths: Sequence[str | Path], options: GenerateOptions | None = None
) -> list[GeneratedFile]:
    """Generate from spec files and folders; raise InvalidSpecError listing every problem found."""
    return generate_sources(read_sources(paths), options)


def write_outputs(outputs: Sequence[GeneratedFile], folder: Path) -> list[Path]:
    """Write generated files into ``folder`` (created when missing); return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for output in outputs:
        path = folder / output.name
        path.write_text(output.text, encoding="utf-8")
        written.append(path)
    return written
