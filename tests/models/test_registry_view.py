"""The Models pages' view models: champion and challenger, serving, grouping, the detail."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.integrations.mlflow import ModelVersion, RegisteredModel
from portal.models.owners import ModelOwner, ValidationPolicy
from portal.models.pins import Pin
from portal.models.registry import (
    Pick,
    RegistryStatus,
    Serving,
    build_detail,
    build_overview,
    champion_and_challenger,
    serving_of,
    summarize,
)

ENVS = ("dev", "staging", "prod")
READY = RegistryStatus("ready", "http://mlflow.example.invalid")


def served(**versions: str | None) -> list[Serving]:
    return [Serving(env, versions.get(env)) for env in ENVS]


def owner(model: str, service: str, team: str | None, metric: str | None = None) -> ModelOwner:
    ref = f"group:default/{team}" if team else None
    return ModelOwner(model, service, ref, None, ValidationPolicy(metric=metric))


def model(name: str, latest: str | None, **aliases: str) -> RegisteredModel:
    return RegisteredModel(name, None, None, aliases=aliases, latest_version=latest)


def test_aliases_win_over_the_serving_rule() -> None:
    champion, challenger = champion_and_challenger(
        {"champion": "2", "challenger": "4"}, "7", served(prod="5")
    )
    assert champion == Pick("2", "alias") and challenger == Pick("4", "alias")


def test_without_aliases_prod_serves_the_champion_and_the_newest_after_it_challenges() -> None:
    assert champion_and_challenger({}, "12", served(dev="12", prod="9")) == (
        Pick("9", "serving"),
        Pick("12", "newest"),  # compared as numbers: "12" > "9"
    )


def test_no_challenger_when_the_champion_is_the_newest_version() -> None:
    assert champion_and_challenger({}, "5", served(prod="5")) == (Pick("5", "serving"), None)


def test_only_the_last_environment_makes_a_champion() -> None:
    # staging serves 4 but prod is unpinned: no champion, so no challenger either.
    assert champion_and_challenger({}, "5", served(staging="4")) == (None, None)


def test_a_champion_alias_alone_gets_the_newest_later_version_as_challenger() -> None:
    champion, challenger = champion_and_challenger({"champion": "3"}, "6", served(prod="5"))
    assert champion == Pick("3", "alias") and challenger == Pick("6", "newest")


def test_a_prod_pin_naming_another_model_is_no_champion() -> None:
    rows = serving_of(
        "a-model",
        {"prod": Pin("prod", "p/model.yaml", "4", model="other-model")},
        ENVS,
    )
    assert rows[-1].other_model == "other-model"
    assert champion_and_challenger({}, "5", rows) == (None, None)


def test_serving_per_environment_says_overlay_problem_version_or_unpinned() -> None:
    pins = {
        "dev": Pin("dev", "d/model.yaml"),
        "prod": Pin("prod", "p/model.yaml", problem="p/model.yaml line 2: not valid YAML"),
    }
    dev, staging, prod = serving_of("m", pins, ENVS)
    assert dev == Serving("dev", None, "d/model.yaml")  # unpinned
    assert staging == Serving("staging", has_overlay=False)
    assert prod.problem == "p/model.yaml line 2: not valid YAML" and prod.version is None


def test_models_are_grouped_by_component_and_team_with_unowned_models_last() -> None:
    owners = {
        "zeta-detector": owner("zeta-detector", "zeta", "alpha-team"),
        "air-air-quality": owner("air-air-quality", "air", "beta-team"),
        "air-extra": owner("air-extra", "air", "beta-team"),
        "bare-model": owner("bare-model", "bare", None),
    }
    models = [
        model(name, "1") for name in ("zeta-detector", "air-air-quality", "stray", "bare-model")
    ]

    overview = build_overview(READY, models, owners, {}, ENVS)

    grouped = [(g.component, g.team, [m.name for m in g.models]) for g in overview.groups]
    assert grouped == [
        ("zeta", "alpha-team", ["zeta-detector"]),
        ("air", "beta-team", ["air-air-quality", "air-extra"]),
        ("bare", None, ["bare-model"]),  # a component without an owner sorts after teams
        (None, None, ["stray"]),
    ]
    extra = overview.model("air-extra")
    assert extra is not None and not extra.registered and extra.latest_version is None


def test_catalog_models_are_listed_only_when_the_registry_answered() -> None:
    owners = {"air-air-quality": owner("air-air-quality", "air", "beta-team")}
    down = RegistryStatus("unreachable", "http://x.invalid", "refused")
    assert build_overview(down, [], owners, {}, ENVS).groups == ()
    assert build_overview(READY, [], owners, {}, ENVS).model("air-air-quality") is not None


def test_the_overview_uses_each_services_pins_and_counts_versions_from_the_newest() -> None:
    owners = {"air-air-quality": owner("air-air-quality", "air", "beta-team")}
    pins = {"air": {"prod": Pin("prod", "p", "7"), "dev": Pin("dev", "d", "9")}}

    overview = build_overview(READY, [model("air-air-quality", "9")], owners, pins, ENVS)

    [summary] = overview.models
    assert [(row.environment, row.version) for row in summary.serving] == [
        ("dev", "9"),
        ("staging", None),
        ("prod", "7"),
    ]
    assert summary.champion == Pick("7", "serving") and summary.challenger == Pick("9", "newest")
    assert summary.version_count == 9


def version(number: int, metrics: dict[str, float], **tags: str) -> ModelVersion:
    return ModelVersion(
        "air-air-quality",
        str(number),
        datetime(2026, 1, number, tzinfo=UTC),
        run_id=f"run{number}",
        tags=tags,
        aliases=("champion",) if number == 2 else (),
        metrics=metrics,
    )


def test_the_detail_lists_versions_newest_first_with_metrics_and_series() -> None:
    versions = [
        version(1, {"holdout_mae": 3.0, "holdout_rmse": 4.0}, primary_metric="holdout_rmse"),
        version(2, {"holdout_mae": 2.5}, sha256="ab" * 32, git_commit="c0ffee"),
        version(
            3,
            {"holdout_mae": 2.0, "holdout_rmse": 3.5, "accuracy": 0.9},
            training_window_start="2026-01-01T00:00:00Z",
            training_window_end="2026-01-08T00:00:00Z",
        ),
    ]
    the_owner = owner("air-air-quality", "air", "beta-team")
    pins = {"prod": Pin("prod", "p", "2"), "dev": Pin("dev", "d", "3")}
    summary = summarize(
        "air-air-quality",
        model("air-air-quality", "3", champion="2"),
        the_owner,
        pins,
        ENVS,
        3,
    )

    detail = build_detail(summary, list(reversed(versions)), READY, ENVS, pins=pins)

    assert [row.version for row in detail.rows] == ["3", "2", "1"]
    assert [v.version for v in detail.versions] == ["1", "2", "3"]  # the registry's order
    assert detail.metrics == ("holdout_rmse", "accuracy", "holdout_mae")  # primary tag first
    newest, middle, _ = detail.rows
    assert newest.window_start == "2026-01-01T00:00:00Z" and newest.serving_in == ("dev",)
    assert middle.digest == "ab" * 32 and middle.commit == "c0ffee"
    assert middle.aliases == ("champion",) and middle.serving_in == ("prod",)
    rmse = detail.series[0]
    assert rmse.metric == "holdout_rmse"
    assert rmse.versions == (1, 2, 3) and rmse.values == (4.0, None, 3.5)
    assert detail.pins == pins


def test_the_components_metric_goes_first_in_the_detail() -> None:
    the_owner = owner("air-air-quality", "air", "beta-team", metric="holdout_mae")
    summary = summarize("air-air-quality", None, the_owner, None, ENVS, 1)
    versions = [version(1, {"a_metric": 1.0, "holdout_mae": 2.0}, primary_metric="a_metric")]
    assert build_detail(summary, versions, READY, ENVS).metrics == ("holdout_mae", "a_metric")
