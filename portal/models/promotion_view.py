"""What a model's page shows to promote and roll back: forms, the audit and the rollback banner.

:func:`promotion_context` feeds two partials of ``/models/{name}``:
``models/_promotion.html`` (promote a version into an environment, roll an environment
back, and the audit of promotions and rollbacks) and ``models/_rollback_banner.html``
(an SLO of the model's service pages soon after a promotion merged: offer the rollback,
see :mod:`portal.models.rollback_offer`). The page never waits for Prometheus: the
banner uses the SLO runtime's last snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import Request
from sqlmodel import Session

from portal.auth.identity import Identity
from portal.clock import utcnow
from portal.deps import app_settings, app_state
from portal.integrations.mlflow import ModelVersion
from portal.models.audit import ModelChange, model_changes, served_before
from portal.models.owners import ModelOwner, model_owners
from portal.models.pins import Pin
from portal.models.rollback_offer import RollbackOffer, rollback_offers
from portal.slo.overview import SLOStatus
from portal.slo.runtime import SLORuntime

READY = "READY"


class ModelDetail(Protocol):
    """What the promotion partials read of the model page's view model."""

    @property
    def name(self) -> str:
        """The registered model's name."""
        ...

    @property
    def owner(self) -> ModelOwner | None:
        """The catalog Component that names the model (None: no Component does)."""
        ...

    @property
    def environments(self) -> Sequence[str]:
        """The GitOps repository's environments (its cluster folders on main)."""
        ...

    @property
    def versions(self) -> Sequence[ModelVersion]:
        """The model's versions in the registry (empty when it cannot be read)."""
        ...

    @property
    def pins(self) -> Mapping[str, Pin]:
        """Each environment's pin on main (only environments with an overlay)."""
        ...


@dataclass(frozen=True)
class EnvironmentRow:
    """One environment: what it serves, and what a rollback would return to."""

    environment: str
    serving: str | None  # a version of this model; None: unpinned (or another model)
    problem: str | None  # the pin on main cannot be read
    rollback_to: str | None  # None: nothing recorded; "": unpinned
    rollback_via: ModelChange | None  # the merged change that set the current version

    @property
    def can_roll_back(self) -> bool:
        """True when a rollback can be proposed: something pinned, and what was before known."""
        return self.problem is None and self.serving is not None and self.rollback_to is not None

    @property
    def why_no_rollback(self) -> str:
        """Say why there is no rollback button."""
        if self.problem is not None:
            return "the pin on main cannot be read"
        if self.serving is None:
            return "nothing pinned to roll back"
        return "no merged promotion recorded to roll back"


@dataclass(frozen=True)
class PromotionView:
    """The promote form, the rollback buttons and the audit of one model."""

    name: str
    owner: ModelOwner | None
    may_propose: bool
    versions: Sequence[ModelVersion]  # READY versions, newest first
    environments: Sequence[EnvironmentRow]
    audit: Sequence[ModelChange]

    @property
    def promote_action(self) -> str:
        """Where the promote form posts."""
        return f"/models/{self.name}/promote"

    @property
    def rollback_action(self) -> str:
        """Where a rollback button posts."""
        return f"/models/{self.name}/rollback"

    @property
    def who_may(self) -> str:
        """Say who may propose, for people who may not."""
        if self.owner is None:
            return "no catalog Component names this model (annotation portal.platform/models)"
        return f"members of {self.owner.owner_ref or 'its owner'} can propose changes"


def may_propose_model(
    identity: Identity | None, owner: ModelOwner | None, admin_group: str
) -> bool:
    """Return True when ``identity`` is a person who may propose changes to the model."""
    if identity is None or identity.token is not None or owner is None:
        return False
    if identity.is_admin(admin_group):
        return True
    return owner.owner_ref is not None and identity.is_member(owner.owner_ref)


def _serving(pin: Pin, name: str) -> str | None:
    return pin.version if pin.model in (None, name) else None


def build_view(
    session: Session,
    identity: Identity | None,
    admin_group: str,
    environments: Sequence[str],
    detail: ModelDetail,
) -> PromotionView:
    """Build the partial's model from the page's (one query of the audit)."""
    owner = detail.owner
    audit = model_changes(session, owner.service, detail.name) if owner is not None else []
    rows = []
    for environment in environments:
        pin = detail.pins.get(environment)
        if pin is None:
            continue
        serving = _serving(pin, detail.name)
        setter = served_before(audit, environment, serving) if serving else None
        rows.append(
            EnvironmentRow(
                environment,
                serving,
                pin.problem,
                setter.from_version if setter is not None else None,
                setter,
            )
        )
    ready = sorted(
        (version for version in detail.versions if version.status == READY),
        key=lambda version: version.number,
        reverse=True,
    )
    return PromotionView(
        detail.name,
        owner,
        may_propose_model(identity, owner, admin_group),
        ready,
        rows,
        audit,
    )


def banner_context(
    session: Session,
    identity: Identity | None,
    admin_group: str,
    service: str,
    statuses: Iterable[SLOStatus],
    name: str | None = None,
) -> dict[str, Any]:
    """Return the rollback banner's context: the offers, and the models one may roll back."""
    offers: list[RollbackOffer] = rollback_offers(session, service, statuses, utcnow(), name)
    owners = model_owners(session) if offers else {}
    allowed = {
        offer.model
        for offer in offers
        if may_propose_model(identity, owners.get(offer.model), admin_group)
    }
    return {"rollback_offers": offers, "may_roll_back": allowed}


def promotion_context(request: Request, session: Session, detail: ModelDetail) -> dict[str, Any]:
    """Return what ``_promotion.html`` and ``_rollback_banner.html`` need for ``detail``."""
    settings = app_settings(request)
    identity: Identity | None = getattr(request.state, "identity", None)
    view = build_view(session, identity, settings.admin_group, detail.environments, detail)
    banner: dict[str, Any] = {"rollback_offers": [], "may_roll_back": set()}
    if detail.owner is not None:
        slo = app_state(request.app, "slo", SLORuntime)
        statuses = slo.for_service(detail.owner.service, wait=False)
        banner = banner_context(
            session, identity, settings.admin_group, detail.owner.service, statuses, detail.name
        )
    return {"promotion": view, **banner}
