"""SLO rules ship with the service: the PrometheusRule generated from ``slo.yaml``, committed.

A service's ``slo.yaml`` only alerts once its rules reach the cluster's Prometheus. The
portal commits them as a Prometheus-Operator ``PrometheusRule`` in the service's Kustomize
base (:data:`RULE_FILE`, listed under ``resources`` of :data:`KUSTOMIZATION_FILE`), so Flux
applies them with the rest of the service, and regenerates the file whenever a change
touches the spec (the scaffold and ``POST /api/changes`` both do).

The file is generated, never written by hand: the ``slo rules shipped`` check fails when
the committed rule differs from what the spec generates now (a hand edit, a stale file
after the spec changed, a generator upgrade), when it is missing or not listed in the
kustomization while ``slo.yaml`` exists, and when it exists without an ``slo.yaml``. A
spec that does not compile cannot be compared: the check is then an error, never a pass
(the ``slo rules`` check names the spec's problems).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml

from portal.integrations.kubernetes import Finding, Severity
from portal.review.check_results import Outcome, summarise
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import GenerateOptions, OutputFormat, generate_sources

SLO_FILE = "slo.yaml"
RULE_NAME = "slo-rules.yaml"
BASE_FOLDER = "deploy/base"
RULE_FILE = f"{BASE_FOLDER}/{RULE_NAME}"
KUSTOMIZATION_FILE = f"{BASE_FOLDER}/kustomization.yaml"
CHECK_RULE = "slo-rules-shipped"
REASON = (
    "Prometheus evaluates only the rules the cluster has: the PrometheusRule committed in the "
    "service's base is what Flux applies, so it must be exactly what slo.yaml generates, or "
    "the SLO's burn-rate alerts are missing or out of date."
)
# The rules the portal's own pages, review and local Prometheus use (default options), in
# the Prometheus-Operator format.
OPTIONS = GenerateOptions(format=OutputFormat.OPERATOR)
_RESOURCES_KEY = re.compile(r"^resources\s*:\s*(#.*)?$")
_ITEM = re.compile(r"^(?P<indent>\s*)-\s")


def shipped_rule(slo_text: str, service: str) -> str:
    """Return the PrometheusRule text ``services/<service>/slo.yaml`` generates.

    Raises :class:`InvalidSpecError` (naming ``services/<service>/slo.yaml``, line and
    field) when the spec does not compile. A spec naming several services gets one
    PrometheusRule document each, in one file.
    """
    source = f"services/{service}/{SLO_FILE}"
    outputs = generate_sources({source: slo_text}, OPTIONS)
    texts = [output.text for output in outputs if output.kind == "rules"]
    return "---\n".join(texts)


def _resources(kustomization: str, source: str) -> tuple[dict[str, Any], list[Any]]:
    try:
        data = yaml.safe_load(kustomization)
    except yaml.YAMLError as error:
        raise ValueError(f"{source} is not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"{source} is not a mapping (a Kustomization)")
    resources = data.get("resources", [])
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise ValueError(f"{source}: resources is not a list")
    return data, resources


def lists_rule(kustomization: str, source: str = KUSTOMIZATION_FILE) -> bool:
    """Tell whether the kustomization text lists :data:`RULE_NAME` under ``resources``."""
    _data, resources = _resources(kustomization, source)
    return RULE_NAME in resources


def with_rule_listed(kustomization: str, source: str = KUSTOMIZATION_FILE) -> str:
    """Return the kustomization text with :data:`RULE_NAME` added to ``resources``.

    The entry is written as one more line of the block list, so comments and layout stay as
    the template wrote them; a kustomization that already lists it comes back unchanged.
    Raises ``ValueError`` naming ``source`` when it is not a Kustomization mapping.
    """
    data, resources = _resources(kustomization, source)
    if RULE_NAME in resources:
        return kustomization
    wanted = {**data, "resources": [*resources, RULE_NAME]}
    edited = _inserted(kustomization)
    try:
        if edited is not None and yaml.safe_load(edited) == wanted:
            return edited
    except yaml.YAMLError:
        pass
    # A layout the line edit does not handle (a flow list, an anchor): written anew.
    return yaml.safe_dump(wanted, sort_keys=False, default_flow_style=False)


def _inserted(text: str) -> str | None:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    key = next((i for i, line in enumerate(lines) if _RESOURCES_KEY.match(line)), None)
    if key is None:
        return "".join(lines) + f"resources:\n  - {RULE_NAME}\n"
    last, indent = key, None
    for index in range(key + 1, len(lines)):
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        item = _ITEM.match(line)
        if item is None and not line[0].isspace():
            break  # the next top-level key
        if item is not None and indent is None:
            indent = item["indent"]
        last = index
    if indent is None and last != key:
        return None  # something other than a block list
    entry = f"{indent if indent is not None else '  '}- {RULE_NAME}\n"
    return "".join([*lines[: last + 1], entry, *lines[last + 1 :]])


def _finding(service: str, path: str, message: str) -> Finding:
    where = f"services/{service}/{path}"
    return Finding(
        severity=Severity.ERROR,
        rule=CHECK_RULE,
        object=where,
        source=where,
        path="",
        message=f"{where}: {message}",
        reason=REASON,
    )


def _first_difference(committed: str, generated: str) -> str:
    for group in difflib.SequenceMatcher(
        None, committed.splitlines(), generated.splitlines(), autojunk=False
    ).get_grouped_opcodes(0):
        _tag, start, _end, _other, _other_end = group[0]
        return f"line {start + 1}"
    return "the end of the file"  # only line endings differ


def shipped_rules_outcome(service_dir: Path) -> Outcome:
    """Compare the committed rule of ``services/<name>`` with what its ``slo.yaml`` generates."""
    service = service_dir.name
    spec, rule = service_dir / SLO_FILE, service_dir / RULE_FILE
    kustomization = service_dir / KUSTOMIZATION_FILE
    subject = f"{RULE_FILE} against {SLO_FILE}"
    findings: list[Finding] = []
    if not spec.is_file():
        if rule.is_file():
            message = (
                f"there is no {SLO_FILE} to generate it from: delete it with the SLO, "
                f"or restore {SLO_FILE}"
            )
            findings.append(_finding(service, RULE_FILE, message))
        return Outcome(summarise(findings, subject), findings)
    try:
        generated = shipped_rule(spec.read_text(encoding="utf-8"), service)
    except InvalidSpecError as errors:
        return Outcome(
            f"{SLO_FILE} does not compile ({len(errors.errors)} error(s), see the slo rules "
            "check): its rules cannot be compared",
            could_not_run=True,
        )
    if not kustomization.is_file():
        message = (
            f"there is no {KUSTOMIZATION_FILE} to ship the SLO rules in: the service's "
            "Kustomize base is where Flux applies them from"
        )
        findings.append(_finding(service, KUSTOMIZATION_FILE, message))
    elif not lists_rule(kustomization.read_text(encoding="utf-8"), KUSTOMIZATION_FILE):
        message = f"resources does not list {RULE_NAME}: Flux would not apply the SLO rules"
        findings.append(_finding(service, KUSTOMIZATION_FILE, message))
    if not rule.is_file():
        message = (
            f"is missing: {SLO_FILE} exists, and its PrometheusRule must be committed here "
            f"(edit {SLO_FILE} through the portal, or run `portal slo generate --format "
            f"operator {SLO_FILE} > {RULE_FILE}`)"
        )
        findings.append(_finding(service, RULE_FILE, message))
    else:
        committed = rule.read_text(encoding="utf-8")
        if committed != generated:
            message = (
                f"differs from the rules {SLO_FILE} generates (first at "
                f"{_first_difference(committed, generated)}): the file is generated, never "
                f"edited by hand; change {SLO_FILE} through the portal and it is regenerated"
            )
            findings.append(_finding(service, RULE_FILE, message))
    return Outcome(summarise(findings, subject), findings)
