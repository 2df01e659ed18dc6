"""What a trained model records in the model registry: parameters, holdout metrics, tags.

The holdout is the forecaster's walk-forward backtest (:func:`app.forecast.backtest`): each
of the last complete days is predicted, from the evening before, by a model fitted only on
the days before it, so no prediction has seen the day it is judged on. Per pollutant the
registry gets that mean absolute error (``holdout_mae_<pollutant>``, µg/m³) beside the
persistence baseline's (``holdout_persistence_mae_<pollutant>``: tomorrow = the last 24
hours). The primary metric, ``holdout_relative_mae``, is the model's error divided by
persistence's, averaged over the pollutants: below 1 the model beats persistence, 1 is no
better, lower is better. It compares versions trained on calmer and dirtier weeks fairly,
where a plain error in µg/m³ would mostly follow the pollution level.

Nothing here talks to the registry: :mod:`.registry` does, behind :class:`ModelRegistry`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from .settings import TEMPLATE, TEMPLATE_VERSION, Settings
from .training import DATA_SOURCE, TrainedModels

PRIMARY_METRIC = "holdout_relative_mae"
PRIMARY_METRIC_DIRECTION = "lower"
ARTIFACT_PATH = "model"  # the run's folder holding the two files below
ARTIFACT_FILE = "model.skops"
CARD_FILE = "model-card.json"
TAG_SHA256 = "sha256"
MAX_PARAM_LENGTH = 500  # MLflow accepts longer values; nothing in a card needs more


class RegistryError(RuntimeError):
    """The model registry could not be used; the message says what failed."""


@dataclasses.dataclass(frozen=True)
class Downloaded:
    """One registered version's files, downloaded into a scratch folder."""

    version: str
    artifact: Path
    card: Path
    tags: Mapping[str, str]


class ModelRegistry(Protocol):
    """Where trained models are logged and pinned versions come from (MLflow in service)."""

    def log(self, models: TrainedModels, artifact: Path) -> str:
        """Log one trained model as a run and a new version; return the version number."""
        ...

    def download(self, version: str, destination: Path) -> Downloaded:
        """Download one version's artifact and card into ``destination``."""
        ...


@dataclasses.dataclass(frozen=True)
class Record:
    """Everything one trained model writes to the registry besides its files."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def _flatten(prefix: str, value: Any, into: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, into)
    elif isinstance(value, list | tuple):
        into[prefix] = ",".join(str(item) for item in value)[:MAX_PARAM_LENGTH]
    elif value is not None:
        into[prefix] = str(value)[:MAX_PARAM_LENGTH]


def params_of(card: Mapping[str, Any]) -> dict[str, str]:
    """Return the card's parameters flattened (``anomaly.n_estimators``) plus the place."""
    params: dict[str, str] = {}
    _flatten("", card.get("parameters", {}), params)
    for key in ("city", "latitude", "longitude"):
        _flatten(key, card.get(key), params)
    return params


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def holdout_metrics(card: Mapping[str, Any]) -> dict[str, float]:
    """Return the holdout metrics of a card (see the module docstring), then the anomaly's."""
    metrics: dict[str, float] = {}
    errors: list[float] = []
    ratios: list[float] = []
    days = 0
    for pollutant, skill in card.get("metrics", {}).get("forecast", {}).items():
        mae, baseline = skill.get("mae"), skill.get("persistence_mae")
        if mae is None or baseline is None:
            continue  # no complete day to judge it on: no figure rather than a made-up one
        metrics[f"holdout_mae_{pollutant}"] = float(mae)
        metrics[f"holdout_persistence_mae_{pollutant}"] = float(baseline)
        errors.append(float(mae))
        if baseline > 0:
            ratios.append(float(mae) / float(baseline))
        days = max(days, len(skill.get("days", [])))
    mae = _mean(errors)
    relative = _mean(ratios)
    if mae is not None:
        metrics["holdout_mae"] = mae
        metrics["holdout_days"] = float(days)
    if relative is not None:
        metrics[PRIMARY_METRIC] = relative
    for name, value in card.get("metrics", {}).get("anomaly", {}).items():
        if isinstance(value, int | float):
            metrics[f"anomaly_{name}"] = float(value)
    return metrics


def _instant(local: str | None, offset_seconds: int) -> str:
    """Return a card's local wall time as ISO 8601 with its UTC offset ("" when unknown)."""
    if not local:
        return ""
    zone = timezone(timedelta(seconds=offset_seconds))
    return datetime.fromisoformat(local).replace(tzinfo=zone).isoformat()


def version_tags(card: Mapping[str, Any], settings: Settings) -> dict[str, str]:
    """Return the tags of the model version (the names the portal reads)."""
    window = card.get("training_window", {})
    offset = int(window.get("utc_offset_seconds") or 0)
    return {
        "service": settings.service_name,
        "template": TEMPLATE,
        "template_version": TEMPLATE_VERSION,
        "git_commit": settings.git_commit,
        "training_window_start": _instant(window.get("start"), offset),
        "training_window_end": _instant(window.get("end"), offset),
        TAG_SHA256: str(card["artifact"]["sha256"]),
        "data_source": DATA_SOURCE,
        "primary_metric": PRIMARY_METRIC,
        "primary_metric_direction": PRIMARY_METRIC_DIRECTION,
        "local_version": str(card.get("version", "")),
    }


def record_of(models: TrainedModels, settings: Settings) -> Record:
    """Return the parameters, metrics and tags a trained (and saved) model logs."""
    card = models.card
    return Record(params_of(card), holdout_metrics(card), version_tags(card, settings))
