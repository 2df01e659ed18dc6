"""Which catalog component owns each registered model, and how its versions are judged.

A service names the models it registers in its ``catalog-info.yaml``
(``portal.platform/models: <service>-air-quality``, comma-separated) and says how a
candidate version is compared with the serving one: ``portal.platform/model-metric``,
``portal.platform/model-metric-direction`` (``lower`` or ``higher`` is better) and
``portal.platform/model-tolerance`` (the fraction the candidate may be worse by). Absent
annotations fall back to the candidate version's own ``primary_metric`` and
``primary_metric_direction`` tags, and a tolerance of 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session, col, select

from portal.catalog.models import Entity

MODELS_ANNOTATION = "portal.platform/models"
METRIC_ANNOTATION = "portal.platform/model-metric"
DIRECTION_ANNOTATION = "portal.platform/model-metric-direction"
TOLERANCE_ANNOTATION = "portal.platform/model-tolerance"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
MAX_TOLERANCE = 1.0

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class ValidationPolicy:
    """How a candidate is compared: ``metric`` (None: the candidate's primary metric tag)."""

    metric: str | None = None
    direction: Direction | None = None
    tolerance: float = 0.0


@dataclass(frozen=True)
class ModelOwner:
    """The catalog component a registered model belongs to, and its validation policy."""

    model: str
    service: str
    owner_ref: str | None
    system_ref: str | None
    policy: ValidationPolicy


def model_names(annotations: Mapping[str, Any]) -> list[str]:
    """Return the registered model names an annotation lists (invalid names are dropped)."""
    raw = annotations.get(MODELS_ANNOTATION)
    if not isinstance(raw, str):
        return []
    names = (part.strip() for part in raw.split(","))
    return [name for name in names if MODEL_NAME.fullmatch(name)]


def validation_policy(annotations: Mapping[str, Any]) -> tuple[ValidationPolicy, list[str]]:
    """Read the validation annotations; each problem names the annotation and its value.

    A bad value is reported and its default used, so one typo never hides the others.
    """
    problems: list[str] = []
    metric = annotations.get(METRIC_ANNOTATION)
    if metric is not None and not (isinstance(metric, str) and metric.strip()):
        problems.append(f"{METRIC_ANNOTATION}: {metric!r} is not a metric name")
        metric = None
    direction = annotations.get(DIRECTION_ANNOTATION)
    if direction is not None and direction not in ("lower", "higher"):
        problems.append(f"{DIRECTION_ANNOTATION}: {direction!r} is neither lower nor higher")
        direction = None
    tolerance = 0.0
    raw = annotations.get(TOLERANCE_ANNOTATION)
    if raw is not None:
        try:
            tolerance = float(str(raw))
        except ValueError:
            tolerance = math.nan
        if not 0.0 <= tolerance <= MAX_TOLERANCE:  # also false for NaN
            problems.append(
                f"{TOLERANCE_ANNOTATION}: {raw!r} is not a fraction between 0 and {MAX_TOLERANCE:g}"
            )
            tolerance = 0.0
    policy = ValidationPolicy(
        metric.strip() if isinstance(metric, str) else None, direction, tolerance
    )
    return policy, problems


def _annotations(document: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = document.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}


def model_owners(session: Session) -> dict[str, ModelOwner]:
    """Return the owner of every model a catalog Component names, by model name.

    When two components name one model, the first by ref keeps it (the catalog page of
    the other shows the annotation as it is).
    """
    owners: dict[str, ModelOwner] = {}
    rows = session.exec(
        select(Entity).where(Entity.kind_key == "component", col(Entity.orphan).is_(False))
    )
    for entity in sorted(rows, key=lambda row: row.ref):
        annotations = _annotations(entity.document)
        policy, _ = validation_policy(annotations)
        for name in model_names(annotations):
            owners.setdefault(
                name, ModelOwner(name, entity.name, entity.owner_ref, entity.system_ref, policy)
            )
    return owners
