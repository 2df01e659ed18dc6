"""The JSON shapes of ``GET /api/models`` and ``GET /api/models/{name}``, and the conversions.

The same view models the pages render (:mod:`portal.models.registry`), as pydantic models
so the API documents them. Times are ISO 8601 (UTC); versions are MLflow's numbers as
text ("3"); a metric is the latest value the version's run logged.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from markupsafe import Markup
from pydantic import BaseModel

from portal.models.registry import (
    ModelDetail,
    ModelsOverview,
    ModelSummary,
    Pick,
    RegistryStatus,
    Serving,
    VersionRow,
)


class RegistryOut(BaseModel):
    """The registry the figures come from: ``not_configured``, ``unreachable`` or ``ready``."""

    state: Literal["not_configured", "unreachable", "ready"]
    url: str | None
    error: str | None


class ServingOut(BaseModel):
    """What one environment serves: a version, nothing pinned (``version`` null), or why not known.

    ``has_overlay`` false: the service has no overlay for that environment on main.
    ``other_model``: the pin's ``MODEL_URI`` names another registered model.
    """

    environment: str
    version: str | None
    path: str | None
    problem: str | None
    other_model: str | None
    has_overlay: bool


class PickOut(BaseModel):
    """A champion or challenger, and why: ``alias``, ``serving`` (prod) or ``newest``.

    ``newest``: the newest version, newer than the champion.
    """

    version: str
    source: Literal["alias", "serving", "newest"]


class ModelOut(BaseModel):
    """One model: its owner, newest version, champion, challenger and what each env serves."""

    name: str
    url: str
    registered: bool
    component: str | None
    component_url: str | None
    team: str | None
    latest_version: str | None
    version_count: int
    champion: PickOut | None
    challenger: PickOut | None
    aliases: dict[str, str]
    serving: list[ServingOut]


class ModelGroupOut(BaseModel):
    """The models of one catalog component (``component`` null: models none names)."""

    component: str | None
    team: str | None
    models: list[ModelOut]


class ModelsOut(BaseModel):
    """Every model, grouped by component and team; pins read on GitOps main at ``commit``."""

    registry: RegistryOut
    commit: str | None
    environments: list[str]
    groups: list[ModelGroupOut]
    problems: list[str]


class VersionOut(BaseModel):
    """One version: status, holdout metrics, training window, digest, commit and tags."""

    version: str
    created_at: datetime | None
    status: str
    metrics: dict[str, float]
    training_window_start: str | None
    training_window_end: str | None
    sha256: str | None
    git_commit: str | None
    run_id: str | None
    source: str
    aliases: list[str]
    serving_in: list[str]
    tags: dict[str, str]


class SeriesOut(BaseModel):
    """One metric over the versions: ``values[i]`` is version ``versions[i]``'s (null: none)."""

    metric: str
    versions: list[int]
    values: list[float | None]


class ModelDetailOut(BaseModel):
    """One model: its summary, every version (newest first) and each metric's series."""

    model: ModelOut
    registry: RegistryOut
    commit: str | None
    environments: list[str]
    metrics: list[str]
    versions: list[VersionOut]
    series: list[SeriesOut]
    problems: list[str]


def model_url(name: str) -> str:
    """Return the path of a model's page."""
    return f"/models/{quote(name, safe='')}"


def component_url(component: str) -> str:
    """Return the catalog page of the component that names a model."""
    return f"/catalog/component/default/{quote(component, safe='')}"


def registry_out(status: RegistryStatus) -> RegistryOut:
    """Convert the registry's state."""
    return RegistryOut(state=status.state, url=status.url, error=status.error)


def _serving(row: Serving) -> ServingOut:
    return ServingOut(
        environment=row.environment,
        version=row.version,
        path=row.path,
        problem=row.problem,
        other_model=row.other_model,
        has_overlay=row.has_overlay,
    )


def _pick(pick: Pick | None) -> PickOut | None:
    return PickOut(version=pick.version, source=pick.source) if pick else None


def model_out(model: ModelSummary) -> ModelOut:
    """Convert one model's summary."""
    return ModelOut(
        name=model.name,
        url=model_url(model.name),
        registered=model.registered,
        component=model.component,
        component_url=component_url(model.component) if model.component else None,
        team=model.team,
        latest_version=model.latest_version,
        version_count=model.version_count,
        champion=_pick(model.champion),
        challenger=_pick(model.challenger),
        aliases=dict(sorted(model.aliases.items())),
        serving=[_serving(row) for row in model.serving],
    )


def models_out(overview: ModelsOverview) -> ModelsOut:
    """Convert the overview."""
    return ModelsOut(
        registry=registry_out(overview.registry),
        commit=overview.commit,
        environments=list(overview.environments),
        groups=[
            ModelGroupOut(
                component=group.component,
                team=group.team,
                models=[model_out(model) for model in group.models],
            )
            for group in overview.groups
        ],
        problems=list(overview.problems),
    )


def _version(row: VersionRow) -> VersionOut:
    return VersionOut(
        version=row.version,
        created_at=row.created_at,
        status=row.status,
        metrics=dict(row.metrics),
        training_window_start=row.window_start,
        training_window_end=row.window_end,
        sha256=row.digest,
        git_commit=row.commit,
        run_id=row.run_id,
        source=row.source,
        aliases=list(row.aliases),
        serving_in=list(row.serving_in),
        tags=dict(row.tags),
    )


def detail_out(detail: ModelDetail) -> ModelDetailOut:
    """Convert one model's detail."""
    return ModelDetailOut(
        model=model_out(detail.summary),
        registry=registry_out(detail.registry),
        commit=detail.commit,
        environments=list(detail.environments),
        metrics=list(detail.metrics),
        versions=[_version(row) for row in detail.rows],
        series=[
            SeriesOut(metric=s.metric, versions=list(s.versions), values=list(s.values))
            for s in detail.series
        ],
        problems=list(detail.problems),
    )


def charts_json(detail: ModelDetail) -> Markup:
    """Return the metric series as JSON safe inside ``<script type="application/json">``."""
    charts = [
        {"id": f"metric-{index}", "metric": s.metric, "x": s.versions, "y": s.values}
        for index, s in enumerate(detail.series)
    ]
    text = json.dumps({"charts": charts}, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 (escaped above; JSON, not HTML)
