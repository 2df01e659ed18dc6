"""Promoting a model version into an environment, or rolling one back, as a reviewed change.

A promotion edits one environment's pin (``deploy/overlays/<env>/model.yaml``, see
:mod:`portal.models.pins`) to a version of the registered model; a rollback sets it back
to the version that served before the current one, read from the model's audit
(:mod:`portal.models.audit`). Everything is checked before anything is written: the
model's owning Component (``portal.platform/models``), who proposes, the environment (a
configured one with an overlay on main), and for a promotion the version (it exists, is
``READY``, and is not the one already served). The change then goes through
:func:`portal.proposals.propose.propose` with ``answers["model"]`` recording what it does,
and the figures of both versions as evidence; the review's ``model validation`` check
compares them again on the committed pins.

A registry that cannot be reached refuses a promotion (503, with the reason), never a
rollback: rolling back is what a team does when things go wrong, so its figures are
best effort.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from portal.api_errors import RefusedError
from portal.auth.identity import Identity
from portal.changes.edits import Edit
from portal.changes.environments import deployable_environments
from portal.changes.overlay_patches import FileReader, OverlayRefusedError
from portal.config import Settings
from portal.integrations.mlflow import ModelRegistry, ModelVersion, RegistryError
from portal.models.audit import model_changes, served_before
from portal.models.owners import ModelOwner, model_owners
from portal.models.pins import VERSION, Pin, pin_edits, read_pins
from portal.models.rollback_offer import RollbackOffer
from portal.proposals.evidence import EvidenceItem
from portal.proposals.propose import Proposal, refuse_proposer

READY = "READY"


class ModelChangeRefusedError(RefusedError):
    """A refused promotion or rollback: 403, 404, 409, 503 (``message``) or 422 (per field)."""


@dataclass(frozen=True)
class Serving:
    """What one environment of the model's service serves on main, at ``base``."""

    owner: ModelOwner
    base: str
    environment: str
    pin: Pin

    @property
    def version(self) -> str | None:
        """The version of this model pinned (None: unpinned, or a pin of another model)."""
        if self.pin.model is not None and self.pin.model != self.owner.model:
            return None
        return self.pin.version


def _field(name: str, message: str, status: int = 422) -> ModelChangeRefusedError:
    return ModelChangeRefusedError("the model change was refused", status, {name: message})


def serving(
    session: Session,
    repo: FileReader,
    base: str,
    settings: Settings,
    identity: Identity,
    name: str,
    environment: str,
) -> Serving:
    """Check the model, the proposer and the environment; return what the environment serves.

    404 for a model no Component names, 403 for someone who may not propose changes to
    its service, 422 (``environment``) for an environment that is not configured or has
    no overlay on main, 409 for a pin on main that cannot be read.
    """
    owner = model_owners(session).get(name)
    if owner is None:
        raise ModelChangeRefusedError(
            f"no catalog Component names the model {name!r} (annotation portal.platform/models)",
            404,
        )
    refuse_proposer(session, identity, owner.service, settings)
    environments = deployable_environments(repo, base, settings.environments)
    if environment not in environments:
        offered = ", ".join(environments) or "none"
        raise _field(
            "environment",
            f"{environment!r} is not an environment of the GitOps repository ({offered}: "
            "its clusters/<env>/ folders)",
        )
    pin = read_pins(repo, base, owner.service, [environment]).get(environment)
    if pin is None:
        raise _field(
            "environment",
            f"{owner.service} has no overlay for {environment} on main "
            f"(services/{owner.service}/deploy/overlays/{environment})",
        )
    if pin.problem is not None:
        raise ModelChangeRefusedError(
            f"the pin on main cannot be read, so the portal will not overwrite it: "
            f"{pin.problem}; fix the file by hand",
            409,
        )
    return Serving(owner, base, environment, pin)


def registry_versions(registry: ModelRegistry | None, name: str) -> list[ModelVersion]:
    """Return the versions of ``name``; 503 with the reason when the registry cannot say."""
    if registry is None:
        raise ModelChangeRefusedError(
            "no model registry is configured (set PORTAL_MLFLOW_URL, or install MLflow with "
            "`make tools` so the portal starts a local one)",
            503,
        )
    try:
        return registry.versions(name)
    except RegistryError as error:
        raise ModelChangeRefusedError(
            f"the model registry at {registry.url} did not answer: {error}", 503
        ) from error


def _version(versions: Sequence[ModelVersion], name: str, version: str) -> ModelVersion:
    if VERSION.fullmatch(version) is None:
        raise _field("version", f"{version!r} is not a version number")
    found = next((item for item in versions if item.version == version), None)
    if found is None:
        known = ", ".join(item.version for item in versions) or "none"
        raise _field("version", f"{name} has no version {version} (versions: {known})")
    if found.status != READY:
        raise _field(
            "version", f"{name} version {version} is {found.status}, not {READY}: it cannot serve"
        )
    return found


def primary_metric(owner: ModelOwner, candidate: ModelVersion | None) -> tuple[str | None, str]:
    """Return the metric a version is judged by and its direction (the policy, else its tags)."""
    tags = candidate.tags if candidate is not None else {}
    metric = owner.policy.metric or tags.get("primary_metric") or None
    tagged = tags.get("primary_metric_direction")
    direction = owner.policy.direction or (tagged if tagged in ("lower", "higher") else "lower")
    return metric, direction


def describe(version: ModelVersion | None, number: str | None, metric: str | None) -> str:
    """Say one version's figure: ``version 3: holdout_mae 1.23`` (or why there is none)."""
    if not number:
        return "unpinned (the model the service trains itself)"
    if version is None:
        return f"version {number} (no figures from the registry)"
    if metric is None:
        return f"version {number} (no metric to compare by)"
    value = version.metrics.get(metric)
    shown = f"{value:.6g}" if value is not None else "no value"
    return f"version {number}: {metric} {shown}"


def _facts(version: ModelVersion) -> str:
    tags = version.tags
    parts = [f"created {version.created_at:%Y-%m-%d %H:%M} UTC" if version.created_at else ""]
    if tags.get("training_window_start") or tags.get("training_window_end"):
        window = (
            f"{tags.get('training_window_start', '?')} to {tags.get('training_window_end', '?')}"
        )
        parts.append(f"trained on {window}")
    for tag in ("git_commit", "sha256"):
        if tags.get(tag):
            parts.append(f"{tag} {tags[tag][:12]}")
    return "; ".join(part for part in parts if part)


def _model_answers(target: Serving, action: str, version: str) -> dict[str, dict[str, str]]:
    return {
        "model": {
            "name": target.owner.model,
            "environment": target.environment,
            "version": version,
            "from_version": target.version or "",
            "action": action,
        }
    }


def _edits(repo: FileReader, target: Serving, version: str) -> list[Edit]:
    try:
        return pin_edits(
            repo,
            target.base,
            target.owner.service,
            target.environment,
            target.owner.model,
            version,
        )
    except OverlayRefusedError as error:
        raise _field("environment", str(error)) from None


def build_promotion(
    session: Session,
    repo: FileReader,
    base: str,
    registry: ModelRegistry | None,
    settings: Settings,
    identity: Identity,
    name: str,
    version: str,
    environment: str,
    page_url: str,
) -> Proposal:
    """Check a promotion of ``version`` into ``environment`` and return its proposal.

    ``page_url`` is the model's page (evidence). Raises :class:`ModelChangeRefusedError`;
    nothing is written.
    """
    target = serving(session, repo, base, settings, identity, name, environment)
    versions = registry_versions(registry, name)
    candidate = _version(versions, name, version.strip())
    if target.version == candidate.version:
        raise _field(
            "version",
            f"{name} version {candidate.version} already serves in {environment}: "
            "nothing to promote",
        )
    current = next((item for item in versions if item.version == target.version), None)
    metric, direction = primary_metric(target.owner, candidate)
    said_candidate = describe(candidate, candidate.version, metric)
    said_serving = describe(current, target.version, metric)
    tolerance = target.owner.policy.tolerance
    judged = (
        f"Judged by {metric} ({direction} is better, tolerance {tolerance:.0%})"
        if metric
        else "No metric to judge by (annotation portal.platform/model-metric, or the version's "
        "primary_metric tag)"
    )
    reason = (
        f"Promote {name} version {candidate.version} to {environment}.\n"
        f"Candidate {said_candidate}.\nServing {said_serving}.\n"
        f"{judged}; the review's model validation check compares them on the committed pin."
    )
    evidence = [
        EvidenceItem(
            f"candidate version {candidate.version}", text=_text(said_candidate, candidate)
        ),
        EvidenceItem(f"serving in {environment}", text=_text(said_serving, current)),
        EvidenceItem("model page", url=page_url),
    ]
    was = f" (serving {target.version})" if target.version else " (unpinned)"
    title = f"Promote {name} version {candidate.version} to {environment}{was}"
    return Proposal(
        target.owner.service,
        title,
        reason,
        _edits(repo, target, candidate.version),
        evidence,
        _model_answers(target, "promote", candidate.version),
    )


def _text(said: str, version: ModelVersion | None) -> str:
    facts = _facts(version) if version is not None else ""
    return f"{said}; {facts}" if facts else said


def build_rollback(
    session: Session,
    repo: FileReader,
    base: str,
    registry: ModelRegistry | None,
    settings: Settings,
    identity: Identity,
    name: str,
    environment: str,
    page_url: str,
    extra_evidence: Sequence[EvidenceItem] = (),
) -> Proposal:
    """Check a rollback of ``environment`` and return its proposal.

    The target is what served before the current pin, by the newest merged change that
    set it (409 when none is recorded, or when nothing is pinned). ``extra_evidence`` (an
    SLO alert that suggested it) is added after the versions' figures.
    """
    target = serving(session, repo, base, settings, identity, name, environment)
    if target.version is None:
        raise ModelChangeRefusedError(
            f"{environment} serves no version of {name} from the registry (it is unpinned): "
            "there is nothing to roll back",
            409,
        )
    audit = model_changes(session, target.owner.service, name, environment)
    setter = served_before(audit, environment, target.version)
    if setter is None or setter.from_version is None:
        raise ModelChangeRefusedError(
            f"no merged promotion of {name} to version {target.version} in {environment} is "
            "recorded, so the portal does not know what served before it; promote the "
            "version you want instead",
            409,
        )
    back_to = setter.from_version
    versions: list[ModelVersion] = []
    unavailable = ""
    try:
        versions = registry_versions(registry, name)
    except ModelChangeRefusedError as error:  # best effort: the rollback goes ahead
        unavailable = error.message
    by_number = {item.version: item for item in versions}
    metric, _ = primary_metric(target.owner, by_number.get(target.version))
    said_current = describe(by_number.get(target.version), target.version, metric)
    said_back = describe(by_number.get(back_to), back_to, metric)
    to = f"version {back_to}" if back_to else "the model the service trains itself"
    reason = (
        f"Roll back {name} in {environment} from version {target.version} to {to}: what "
        f"served before change {setter.change_id} ({setter.title}) merged"
        f"{f' at {setter.merged_at:%Y-%m-%d %H:%M} UTC' if setter.merged_at else ''}.\n"
        f"Serving {said_current}.\nRolling back to {said_back}.\n"
        "A rollback needs no model validation, but a reviewer still approves it."
    )
    evidence = [
        EvidenceItem(f"serving in {environment}", text=said_current),
        EvidenceItem("rolling back to", text=said_back),
        EvidenceItem("change that set the current version", text=f"{setter.url}: {setter.title}"),
        *([EvidenceItem("model registry", text=unavailable)] if unavailable else []),
        *extra_evidence,
        EvidenceItem("model page", url=page_url),
    ]
    title = f"Roll back {name} in {environment}: version {target.version} -> " + (
        back_to if back_to else "unpinned"
    )
    return Proposal(
        target.owner.service,
        title,
        reason,
        _edits(repo, target, back_to),
        evidence,
        _model_answers(target, "rollback", back_to),
    )


def offer_evidence(offer: RollbackOffer, slo_url: str) -> list[EvidenceItem]:
    """Return the evidence of a rollback an SLO alert suggested: the alert, burn, promotion."""
    promotion = offer.promotion
    merged = f"{promotion.merged_at:%Y-%m-%d %H:%M} UTC" if promotion.merged_at else "?"
    alerts = ", ".join(offer.alerts) or "a page alert"
    return [
        EvidenceItem(
            f"SLO {offer.slo.service}/{offer.slo.name} pages",
            text=f"{alerts} firing (severity page)",
        ),
        EvidenceItem("burn rate", text=offer.burn_text),
        EvidenceItem(
            "promotion",
            text=f"{promotion.url} merged {merged}: {promotion.title}",
        ),
        EvidenceItem("SLO page", url=slo_url),
    ]
