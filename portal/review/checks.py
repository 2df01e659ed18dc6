"""The automatic checks of a change: kustomize build, schemas, policy and cost, per environment.

Synchronous and self-contained on purpose: the job runner calls ``run_manifest_checks`` in a
worker. Each check is isolated, so a check that crashes is reported as ``error`` and the
others still run: a check that could not run is never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from portal.cost.manifests import DEFAULT_MAX_MONTHLY
from portal.cost.model import Prices
from portal.integrations.checkov import Checkov
from portal.integrations.gitops_tree import TreeFiles
from portal.integrations.kubernetes import (
    PINNED_KUBERNETES_VERSION,
    Finding,
    KubectlNotFoundError,
    KubernetesToolError,
    Severity,
    kustomize_build,
)
from portal.integrations.kubernetes_schemas import validate_objects
from portal.integrations.mlflow import ModelRegistry
from portal.integrations.promtool import Promtool
from portal.integrations.rag_eval import RagEvaluator
from portal.review.check_results import (
    CheckResult,
    CheckStatus,
    Outcome,
    run_check,
    status_of,
    summarise,
)
from portal.review.checkov_check import checkov_findings
from portal.review.collisions import find_collisions
from portal.review.cost_check import MainService, PricesOf, cost_outcome
from portal.review.flux_wiring import find_flux_wiring
from portal.review.local_paths import find_local_paths
from portal.review.model_validation import PinChange, VersionLookup, changed_pins, validate_pin
from portal.review.policy import evaluate_objects, evaluate_service_files
from portal.review.prompt_versions import check_prompt_versions, has_prompts
from portal.review.rag_eval import RAG_FILE, rag_eval_outcome
from portal.review.semantics import evaluate_build
from portal.review.slo_rules_shipped import RULE_FILE as SLO_RULE_FILE
from portal.review.slo_rules_shipped import shipped_rules_outcome
from portal.review.template_conflicts import CHECK as CONFLICTS_CHECK
from portal.review.template_conflicts import conflicts_outcome, has_conflicts
from portal.slo.budget import BudgetLookup, BudgetPolicy, evaluate_budget
from portal.slo.review import PROMTOOL_MISSING, review_slo_file

# Environment names become a path (deploy/overlays/<env>): DNS labels only, no separators.
__all__ = [
    "CheckResult",
    "CheckStatus",
    "CheckTools",
    "run_manifest_checks",
    "status_of",
]

SLO_FILE = "slo.yaml"
CATALOG_FILE = "catalog-info.yaml"
ENVIRONMENT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class CheckTools:
    """The external tools the checks use; ``None`` leaves a tool's check out (unit tests)."""

    kubectl: Path | None = None
    k8s_version: str = PINNED_KUBERNETES_VERSION
    checkov: Checkov | None = None
    # checkov check ids that block a change; the others inform the reviewer as warnings.
    checkov_errors: AbstractSet[str] = frozenset()
    promtool: Promtool | None = None
    # Error-budget policies (read per check, so an edited policy applies at once) and where
    # a service's remaining budget comes from (Prometheus; None: no data, nothing frozen).
    budget_policies: Callable[[], list[BudgetPolicy]] | None = None
    budget_remaining: BudgetLookup | None = None
    # An estimate above this (price sheet currency, per month) fails the cost check.
    max_monthly_cost: Decimal = DEFAULT_MAX_MONTHLY
    # Folders of the portal's machine (its data folder): a committed path under one is local.
    machine_roots: tuple[str, ...] = ()
    # Runs a RAG service's own evaluation (`rag eval`); None leaves that check out.
    rag_evaluator: RagEvaluator | None = None
    # Where model versions are read when a change moves a pin; None: such a change's
    # model validation is an error (a pin is never validated by nobody).
    model_registry: ModelRegistry | None = None


def _build(service_dir: Path, environment: str, kubectl: Path | None, into: list[Any]) -> Outcome:
    overlay = f"deploy/overlays/{environment}"
    if not ENVIRONMENT_NAME.match(environment):
        message = f"{environment!r} is not a valid environment name"
    elif not (service_dir / overlay).is_dir():
        message = f"{overlay} is missing: every environment needs an overlay"
    else:
        try:
            objects = kustomize_build(
                service_dir / overlay, relative_to=service_dir, kubectl=kubectl
            )
        except KubectlNotFoundError:
            raise  # the tool is missing, the manifests are not at fault: status error
        except KubernetesToolError as error:
            message = str(error)
        else:
            into.extend(objects)
            return Outcome(f"{len(objects)} objects rendered from {overlay}")
    finding = Finding(
        severity=Severity.ERROR,
        rule="kustomize-build",
        object=overlay,
        source=overlay,
        path="",
        message=message,
    )
    return Outcome(f"{overlay} does not build", [finding])


def _schema(objects: list[dict[str, Any]], k8s_version: str, source: str) -> Outcome:
    findings = validate_objects(objects, k8s_version, source=source)
    subject = f"{len(objects)} objects against Kubernetes {k8s_version} and CRD schemas"
    return Outcome(summarise(findings, subject), findings)


def _policy(objects: list[dict[str, Any]]) -> Outcome:
    findings = evaluate_objects(objects)
    return Outcome(summarise(findings, f"policy on {len(objects)} objects"), findings)


def _service_policy(
    service_dir: Path, owner_exists: Callable[[str], bool], deploys: bool
) -> Outcome:
    slo = service_dir / SLO_FILE if deploys else None  # an SLO is of something running
    findings = evaluate_service_files(
        owner_exists=owner_exists, catalog_info=service_dir / CATALOG_FILE, slo=slo
    )
    subject = f"{CATALOG_FILE} and {SLO_FILE}" if deploys else CATALOG_FILE
    return Outcome(summarise(findings, subject), findings)


def _semantics(objects: list[dict[str, Any]], slo_file: Path) -> Outcome:
    findings, subject = evaluate_build(objects, slo_file)
    return Outcome(summarise(findings, f"semantic rules on {subject}"), findings)


def _local_paths(service_dir: Path, machine_roots: tuple[str, ...]) -> Outcome:
    findings, read = find_local_paths(service_dir, machine_roots)
    subject = f"local paths in {read} committed text file{'s' * (read != 1)}"
    return Outcome(summarise(findings, subject), findings)


def _slo_rules(service_dir: Path, promtool: Promtool | None) -> Outcome:
    text = (service_dir / SLO_FILE).read_text(encoding="utf-8")
    findings = review_slo_file(SLO_FILE, text, promtool)
    missing = [finding for finding in findings if finding.rule == PROMTOOL_MISSING]
    if missing:  # the tool is missing, not the spec at fault: an error, never a traceback
        return Outcome(missing[0].message, findings, could_not_run=True)
    subject = "slo.yaml and its generated rules" + (
        " (promtool check and unit tests)" if promtool else " (spec only, no promtool)"
    )
    return Outcome(summarise(findings, subject), findings)


def _budget(
    service: str, policies: Callable[[], list[BudgetPolicy]], lookup: BudgetLookup | None
) -> Outcome:
    remaining = lookup(service) if lookup else None
    findings = evaluate_budget(policies(), service, remaining)
    return Outcome(summarise(findings, f"error-budget policy of {service}"), findings)


def _cost(
    objects: list[dict[str, Any]],
    environment: str,
    price_sheets: PricesOf,
    tools: CheckTools,
    main: MainService | None,
) -> Outcome:
    found = cost_outcome(
        objects, environment, price_sheets, tools.max_monthly_cost, main, tools.kubectl
    )
    return Outcome(found.summary, found.findings, found.estimate, found.could_not_run)


def _collisions(
    cluster_files: Callable[[], TreeFiles],
    service: str,
    built: dict[str, list[dict[str, Any]]],
    kubectl: Path | None,
) -> Outcome:
    tree = cluster_files()
    subject, findings = find_collisions(
        tree.files, service, built, too_large=tree.too_large, kubectl=kubectl
    )
    return Outcome(summarise(findings, subject), findings)


def _flux_wiring(
    tree_files: Callable[[], TreeFiles],
    base_files: Callable[[], TreeFiles] | None,
    service_dir: Path,
    built: dict[str, list[dict[str, Any]]],
    k8s_version: str,
) -> Outcome:
    tree = tree_files()
    base = base_files().files if base_files is not None else None
    subject, findings = find_flux_wiring(
        tree.files,
        service_dir.name,
        service_dir,
        built,
        k8s_version,
        too_large=tree.too_large,
        base_files=base,
    )
    return Outcome(summarise(findings, subject), findings)


def _prompts(service_dir: Path, main_dir: Path | None) -> Outcome:
    subject, findings = check_prompt_versions(service_dir, main_dir)
    return Outcome(summarise(findings, subject), findings)


def _rag_eval(service_dir: Path, main_dir: Path | None, evaluator: RagEvaluator) -> Outcome:
    found = rag_eval_outcome(service_dir, main_dir, evaluator)
    return Outcome(found.summary, found.findings, could_not_run=found.could_not_run)


def _model_validation(
    change: PinChange,
    service_dir: Path,
    main_dir: Path | None,
    lookup: VersionLookup,
    model_change: Mapping[str, Any] | None,
) -> Outcome:
    found = validate_pin(change, service_dir, lookup, model_change, main_dir)
    return Outcome(found.summary, found.findings, could_not_run=found.could_not_run)


def _same_prices(prices: Prices) -> PricesOf:
    return lambda _environment: prices


def run_manifest_checks(
    service_dir: Path,
    environments: Sequence[str],
    owner_exists: Callable[[str], bool],
    price_sheet: Prices | PricesOf,
    tools: CheckTools | None = None,
    cluster_files: Callable[[], TreeFiles] | None = None,
    main: MainService | None = None,
    model_change: Mapping[str, Any] | None = None,
    *,
    deploys: bool = True,
    source_files: Callable[[], TreeFiles] | None = None,
    base_source_files: Callable[[], TreeFiles] | None = None,
    template_update: bool = False,
) -> list[CheckResult]:
    """Check one service folder (``services/<name>`` of the GitOps repository).

    Returns ``policy`` for the service files (owner, SLO), ``slo rules`` when there is an
    ``slo.yaml`` (the spec, and with promtool its generated rules and their unit tests),
    ``slo rules shipped`` when there is an ``slo.yaml`` or a committed SLO PrometheusRule
    (:mod:`portal.review.slo_rules_shipped`: the rule committed is what the spec generates),
    ``error budget`` with policies configured, ``semantics`` (committed local paths, see
    :mod:`portal.review.local_paths`), then for each environment ``kustomize (env)``, and
    when that overlay builds, ``schema (env)``, ``policy (env)``, ``cost (env)`` and
    ``semantics (env)`` (:mod:`portal.review.semantics`). A build that fails leaves out the
    checks that need its objects.
    Given ``cluster_files`` (the change's ``clusters/`` and ``infrastructure/`` files),
    ``collisions`` looks for objects defined twice in one cluster build (see
    :mod:`portal.review.collisions`), and ``flux wiring`` whether Flux would apply the service
    there (:mod:`portal.review.flux_wiring`; it reads ``source_files``, the whole tree, when
    given, and with ``base_source_files``, the same of the change's base, also proves every
    Flux object the change adds or edits under ``clusters/``). With checkov configured, one
    ``checkov`` check over every overlay that built comes last.
    ``price_sheet`` prices every environment alike, or reads each one's sheet (a change's
    own ``cost/prices/<env>.yaml``, see :mod:`portal.review.cost_check`); given ``main``
    (the service at the change's base), ``cost (env)`` says the delta against it.
    A service with ``prompts/`` gets ``prompts`` (:mod:`portal.review.prompt_versions`);
    one with ``rag.yaml`` gets ``rag eval`` when an evaluator is configured, comparing its
    figures with main's (:mod:`portal.review.rag_eval`). Each environment whose model pin
    differs from main's gets ``model validation (env)`` (:mod:`portal.review.model_validation`;
    ``model_change`` is the change's ``answers["model"]``, which marks a rollback).
    A template update (``template_update``), and any change whose folder still holds an
    update's conflict marker, gets ``template conflicts`` (:mod:`portal.review.template_conflicts`).
    A folder that deploys nothing (``deploys=False``: a library, a repository skeleton) gets
    only the checks of its files: ``policy`` of its ``catalog-info.yaml`` if it has one,
    ``semantics`` and ``prompts``; no manifest, SLO, budget or cost checks.
    """
    tools = tools or CheckTools()
    sheets = price_sheet if callable(price_sheet) else _same_prices(price_sheet)
    results: list[CheckResult] = []
    if deploys or (service_dir / CATALOG_FILE).is_file():
        policy = partial(_service_policy, service_dir, owner_exists, deploys)
        results.append(run_check("policy", None, policy))
    if deploys and (service_dir / SLO_FILE).is_file():
        results.append(
            run_check("slo rules", None, partial(_slo_rules, service_dir, tools.promtool))
        )
    if deploys and ((service_dir / SLO_FILE).is_file() or (service_dir / SLO_RULE_FILE).is_file()):
        shipped = partial(shipped_rules_outcome, service_dir)
        results.append(run_check("slo rules shipped", None, shipped))
    if deploys and tools.budget_policies is not None:
        budget = partial(_budget, service_dir.name, tools.budget_policies, tools.budget_remaining)
        results.append(run_check("error budget", None, budget))
    paths = partial(_local_paths, service_dir, tools.machine_roots)
    results.append(run_check("semantics", None, paths))
    if template_update or has_conflicts(service_dir):
        conflicts = partial(conflicts_outcome, service_dir)
        results.append(run_check(CONFLICTS_CHECK, None, conflicts))
    main_dir = main.service_dir if main is not None else None
    if has_prompts(service_dir, main_dir):
        results.append(run_check("prompts", None, partial(_prompts, service_dir, main_dir)))
    if not deploys:
        return results
    built: dict[str, list[dict[str, Any]]] = {}
    for environment in environments:
        objects: list[dict[str, Any]] = []
        build = partial(_build, service_dir, environment, tools.kubectl, objects)
        results.append(run_check("kustomize", environment, build))
        if results[-1].status != CheckStatus.PASSED:
            continue
        built[environment] = objects
        source = f"deploy/overlays/{environment}"
        schema = partial(_schema, objects, tools.k8s_version, source)
        results.append(run_check("schema", environment, schema))
        results.append(run_check("policy", environment, partial(_policy, objects)))
        cost = partial(_cost, objects, environment, sheets, tools, main)
        results.append(run_check("cost", environment, cost))
        semantics = partial(_semantics, objects, service_dir / SLO_FILE)
        results.append(run_check("semantics", environment, semantics))
    if cluster_files is not None:
        collide = partial(_collisions, cluster_files, service_dir.name, built, tools.kubectl)
        results.append(run_check("collisions", None, collide))
        tree = source_files or cluster_files
        wiring = partial(_flux_wiring, tree, base_source_files, service_dir, built)
        results.append(run_check("flux wiring", None, partial(wiring, tools.k8s_version)))
    if tools.checkov is not None and built:
        scan = partial(_checkov, tools.checkov, built, tools.checkov_errors)
        results.append(run_check("checkov", None, scan))
    lookup = VersionLookup(tools.model_registry)
    for pin in changed_pins(service_dir, main_dir, environments):
        validate = partial(_model_validation, pin, service_dir, main_dir, lookup, model_change)
        results.append(run_check("model validation", pin.environment, validate))
    if tools.rag_evaluator is not None and (service_dir / RAG_FILE).is_file():
        rag = partial(_rag_eval, service_dir, main_dir, tools.rag_evaluator)
        results.append(run_check("rag eval", None, rag))
    return results


def _checkov(
    checkov: Checkov, built: dict[str, list[dict[str, Any]]], errors: AbstractSet[str]
) -> Outcome:
    subject, findings = checkov_findings(checkov, built, errors)
    return Outcome(summarise(findings, subject), findings)
