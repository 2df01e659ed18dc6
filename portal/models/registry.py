"""What the Models pages show of the MLflow registry: the overview and one model's detail.

The overview groups the registered models by the catalog component that names them
(``portal.platform/models``) and its team; models no component names form a group of
their own. Per model: the newest version, the champion and challenger, the version each
environment serves (its pin on the GitOps main) and how many versions there are. The
detail adds every version (status, holdout metrics, training window, digest, commit),
the aliases and one chart series per metric over the versions.

Champion and challenger: MLflow's aliases ``champion`` and ``challenger`` when set;
otherwise the champion is the version the last configured environment (prod) serves, and
the challenger the newest version newer than it (none without a champion).

Everything here is built from values already read (registry answers, owners, pins), so
it is tested without a server; :mod:`portal.models.registry_runtime` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from portal.integrations.mlflow import ModelVersion, RegisteredModel
from portal.models.owners import ModelOwner
from portal.models.pins import Pin
from portal.slo.store import team_name

CHAMPION = "champion"
CHALLENGER = "challenger"
WINDOW_TAGS = ("training_window_start", "training_window_end")
DIGEST_TAG = "sha256"
COMMIT_TAG = "git_commit"
PRIMARY_METRIC_TAG = "primary_metric"

State = Literal["not_configured", "unreachable", "ready"]
Source = Literal["alias", "serving", "newest"]


@dataclass(frozen=True)
class RegistryStatus:
    """Whether the registry is configured and answered: ``url`` and ``error`` say more."""

    state: State
    url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Serving:
    """What one environment of the owning service serves of the model.

    ``version`` None with no ``problem``: the environment is not pinned (the service serves
    the model it trains itself). ``other_model``: its ``MODEL_URI`` names another model.
    """

    environment: str
    version: str | None = None
    path: str | None = None
    problem: str | None = None
    other_model: str | None = None
    has_overlay: bool = True


@dataclass(frozen=True)
class Pick:
    """A champion or challenger version, and what made it one."""

    version: str
    source: Source


@dataclass(frozen=True)
class ModelSummary:
    """One model in the overview."""

    name: str
    owner: ModelOwner | None
    registered: bool
    latest_version: str | None
    version_count: int
    champion: Pick | None
    challenger: Pick | None
    serving: tuple[Serving, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None

    @property
    def component(self) -> str | None:
        """The catalog component that names the model."""
        return self.owner.service if self.owner else None

    @property
    def team(self) -> str | None:
        """The plain name of the component's owner."""
        return team_name(self.owner.owner_ref) if self.owner and self.owner.owner_ref else None


@dataclass(frozen=True)
class ModelGroup:
    """The models of one component (``component`` None: models no component names)."""

    component: str | None
    team: str | None
    models: tuple[ModelSummary, ...]


@dataclass(frozen=True)
class ModelsOverview:
    """Every model, grouped; ``problems`` name what could not be read (GitOps, pins)."""

    registry: RegistryStatus
    environments: tuple[str, ...]
    commit: str | None = None
    groups: tuple[ModelGroup, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def models(self) -> list[ModelSummary]:
        """Every model of every group."""
        return [model for group in self.groups for model in group.models]

    def model(self, name: str) -> ModelSummary | None:
        """Return one model's summary, None when neither registry nor catalog has it."""
        return next((model for model in self.models if model.name == name), None)


@dataclass(frozen=True)
class VersionRow:
    """One version in the detail's table."""

    version: str
    created_at: datetime | None
    status: str
    metrics: Mapping[str, float]
    window_start: str | None
    window_end: str | None
    digest: str | None
    commit: str | None
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    serving_in: tuple[str, ...]
    tags: Mapping[str, str]


@dataclass(frozen=True)
class MetricSeries:
    """One metric over the versions: ``values[i]`` belongs to ``versions[i]`` (None: absent)."""

    metric: str
    versions: tuple[int, ...]
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class ModelDetail:
    """One model: its summary, versions, table rows (newest first), metrics and charts.

    ``versions`` are the registry's (oldest first) and ``pins`` the owning service's pins
    on main (environments with an overlay): what the promotion partials read.
    """

    summary: ModelSummary
    registry: RegistryStatus
    environments: tuple[str, ...]
    commit: str | None
    versions: tuple[ModelVersion, ...] = ()
    pins: Mapping[str, Pin] = field(default_factory=dict)
    rows: tuple[VersionRow, ...] = ()
    metrics: tuple[str, ...] = ()
    series: tuple[MetricSeries, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The registered model's name."""
        return self.summary.name

    @property
    def owner(self) -> ModelOwner | None:
        """The catalog component that names the model, with its validation policy."""
        return self.summary.owner

    @property
    def serving(self) -> tuple[Serving, ...]:
        """What each environment serves."""
        return self.summary.serving

    def row(self, version: str) -> VersionRow | None:
        """Return one version's row of the table."""
        return next((row for row in self.rows if row.version == version), None)


def _number(version: str | None) -> int:
    return int(version) if version and version.isdigit() else 0


def serving_of(
    name: str, pins: Mapping[str, Pin] | None, environments: Sequence[str]
) -> tuple[Serving, ...]:
    """Return what each environment serves of ``name``, from the service's pins on main."""
    rows = []
    for environment in environments:
        pin = (pins or {}).get(environment)
        if pin is None:
            rows.append(Serving(environment, has_overlay=False))
        elif pin.problem is not None:
            rows.append(Serving(environment, path=pin.path, problem=pin.problem))
        elif pin.model is not None and pin.model != name:
            rows.append(Serving(environment, pin.version, pin.path, other_model=pin.model))
        else:
            rows.append(Serving(environment, pin.version, pin.path))
    return tuple(rows)


def champion_and_challenger(
    aliases: Mapping[str, str], latest: str | None, serving: Sequence[Serving]
) -> tuple[Pick | None, Pick | None]:
    """Apply the rule (see the module): aliases first, then the last environment's pin."""
    champion: Pick | None = None
    if aliases.get(CHAMPION):
        champion = Pick(aliases[CHAMPION], "alias")
    elif serving and serving[-1].version and serving[-1].other_model is None:
        champion = Pick(serving[-1].version, "serving")
    challenger: Pick | None = None
    if aliases.get(CHALLENGER):
        challenger = Pick(aliases[CHALLENGER], "alias")
    elif champion is not None and latest and _number(latest) > _number(champion.version):
        challenger = Pick(latest, "newest")
    return champion, challenger


def summarize(
    name: str,
    model: RegisteredModel | None,
    owner: ModelOwner | None,
    pins: Mapping[str, Pin] | None,
    environments: Sequence[str],
    version_count: int,
) -> ModelSummary:
    """Return one model's summary (``model`` None: the catalog names it, MLflow has not)."""
    serving = serving_of(name, pins, environments)
    aliases = dict(model.aliases) if model else {}
    latest = model.latest_version if model else None
    champion, challenger = champion_and_challenger(aliases, latest, serving)
    return ModelSummary(
        name=name,
        owner=owner,
        registered=model is not None,
        latest_version=latest,
        version_count=version_count,
        champion=champion,
        challenger=challenger,
        serving=serving,
        aliases=aliases,
        updated_at=model.updated_at if model else None,
    )


def group_models(models: Sequence[ModelSummary]) -> tuple[ModelGroup, ...]:
    """Group by component, ordered by team then component; unowned models come last."""
    groups: dict[str | None, list[ModelSummary]] = {}
    for model in sorted(models, key=lambda m: m.name):
        groups.setdefault(model.component, []).append(model)
    owned = [
        ModelGroup(component, members[0].team, tuple(members))
        for component, members in groups.items()
        if component is not None
    ]
    owned.sort(key=lambda group: (group.team or "\uffff", group.component or ""))
    if None in groups:
        owned.append(ModelGroup(None, None, tuple(groups[None])))
    return tuple(owned)


def build_overview(
    registry: RegistryStatus,
    models: Sequence[RegisteredModel],
    owners: Mapping[str, ModelOwner],
    pins: Mapping[str, Mapping[str, Pin]],
    environments: Sequence[str],
    *,
    commit: str | None = None,
    counts: Mapping[str, int] | None = None,
    problems: Sequence[str] = (),
) -> ModelsOverview:
    """Return the overview: every registered model, and every model the catalog names.

    ``pins`` is by service; ``counts`` the number of versions by model (default: the
    newest version's number, which MLflow counts up from 1).
    """
    by_name = {model.name: model for model in models}
    names = sorted(set(by_name) | (set(owners) if registry.state == "ready" else set()))
    summaries = []
    for name in names:
        owner = owners.get(name)
        model = by_name.get(name)
        count = (counts or {}).get(name, _number(model.latest_version if model else None))
        service_pins = pins.get(owner.service) if owner else None
        summaries.append(summarize(name, model, owner, service_pins, environments, count))
    return ModelsOverview(
        registry,
        tuple(environments),
        commit,
        group_models(summaries),
        tuple(problems),
    )


def _primary_metric(versions: Sequence[ModelVersion], owner: ModelOwner | None) -> str | None:
    if owner is not None and owner.policy.metric:
        return owner.policy.metric
    tagged = [v.tags.get(PRIMARY_METRIC_TAG) for v in reversed(versions)]
    return next((tag for tag in tagged if tag), None)


def metric_names(versions: Sequence[ModelVersion], owner: ModelOwner | None) -> tuple[str, ...]:
    """Every metric of any version: the primary one first, then by name."""
    names = sorted({metric for version in versions for metric in version.metrics})
    primary = _primary_metric(versions, owner)
    if primary in names:
        names.remove(primary)
        names.insert(0, primary)
    return tuple(names)


def version_rows(
    versions: Sequence[ModelVersion], serving: Sequence[Serving]
) -> tuple[VersionRow, ...]:
    """Return the table's rows, newest version first."""
    rows = []
    for version in sorted(versions, key=lambda v: v.number, reverse=True):
        envs = tuple(
            row.environment
            for row in serving
            if row.version == version.version and row.other_model is None
        )
        rows.append(
            VersionRow(
                version=version.version,
                created_at=version.created_at,
                status=version.status,
                metrics=dict(version.metrics),
                window_start=version.tags.get(WINDOW_TAGS[0]),
                window_end=version.tags.get(WINDOW_TAGS[1]),
                digest=version.tags.get(DIGEST_TAG),
                commit=version.tags.get(COMMIT_TAG),
                run_id=version.run_id,
                source=version.source,
                aliases=version.aliases,
                serving_in=envs,
                tags=dict(sorted(version.tags.items())),
            )
        )
    return tuple(rows)


def metric_series(
    versions: Sequence[ModelVersion], metrics: Sequence[str]
) -> tuple[MetricSeries, ...]:
    """One series per metric over the versions, oldest first (for the charts)."""
    ordered = sorted(versions, key=lambda v: v.number)
    numbers = tuple(version.number for version in ordered)
    return tuple(
        MetricSeries(metric, numbers, tuple(version.metrics.get(metric) for version in ordered))
        for metric in metrics
    )


def build_detail(
    summary: ModelSummary,
    versions: Sequence[ModelVersion],
    registry: RegistryStatus,
    environments: Sequence[str],
    *,
    pins: Mapping[str, Pin] | None = None,
    commit: str | None = None,
    problems: Sequence[str] = (),
) -> ModelDetail:
    """Return one model's detail from its summary, its versions and its service's pins."""
    metrics = metric_names(versions, summary.owner)
    return ModelDetail(
        summary=summary,
        registry=registry,
        environments=tuple(environments),
        commit=commit,
        versions=tuple(sorted(versions, key=lambda version: version.number)),
        pins=dict(pins or {}),
        rows=version_rows(versions, summary.serving),
        metrics=metrics,
        series=metric_series(versions, metrics),
        problems=tuple(problems),
    )
