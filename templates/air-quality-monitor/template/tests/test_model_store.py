"""Model versions on disk: skops artifacts beside JSON cards, checked when loaded."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import sklearn

from app.model_store import ModelStore, ModelStoreError, sha256_of
from app.settings import Settings
from app.training import NotEnoughDataError, TrainedModels, train_models

from .conftest import NOW
from .models import recorded_timeline, synthetic_timeline

VECTOR = {"pm2_5": 30.0, "pm10": 40.0, "nitrogen_dioxide": 20.0}


def trained(settings: Settings, minutes: int = 0) -> TrainedModels:
    """Train on the synthetic series, as if at NOW + ``minutes``."""
    return train_models(synthetic_timeline(), settings, NOW + timedelta(minutes=minutes))


def test_save_writes_a_skops_artifact_and_its_card(settings: Settings, tmp_path: Path) -> None:
    """The card has version, metrics, parameters, window, scikit-learn version and sha256."""
    store = ModelStore(tmp_path)
    saved = store.save(trained(settings))
    artifact = tmp_path / f"model-{saved.version}.skops"
    card = json.loads((tmp_path / f"model-{saved.version}.json").read_text())
    assert card == saved.card
    assert card["version"] == saved.version == "20261011T090000Z"
    assert card["artifact"]["sha256"] == sha256_of(artifact)
    assert card["artifact"]["format"] == "skops"
    assert card["sklearn_version"] == sklearn.__version__
    assert card["training_window"]["hours"] == 24 * 9 + 11  # 1 Oct 00:00 to 10 Oct 10:00
    assert card["training_window"]["start"] == "2026-10-01T00:00:00"
    assert card["parameters"]["anomaly"]["contamination"] == settings.anomaly_contamination
    assert card["metrics"]["anomaly"]["training_hours"] == card["training_window"]["hours"]
    assert card["metrics"]["forecast"]["pm2_5"]["method"] == "ridge"
    assert zipfile.is_zipfile(artifact)  # the skops format, not a pickle stream


def test_a_saved_version_loads_back_identical(settings: Settings, tmp_path: Path) -> None:
    """Same scores and forecasts after the round trip."""
    store = ModelStore(tmp_path)
    saved = store.save(trained(settings))
    loaded = store.load_latest()
    assert loaded is not None and loaded.version == saved.version
    assert saved.anomaly is not None and loaded.anomaly is not None
    assert loaded.anomaly.score(VECTOR) == saved.anomaly.score(VECTOR)
    timeline = synthetic_timeline()
    for name, forecaster in saved.forecasters.items():
        assert loaded.forecasters[name].predict(timeline) == forecaster.predict(timeline)
        assert loaded.forecasters[name].skill == forecaster.skill


def test_a_tampered_artifact_is_refused(settings: Settings, tmp_path: Path) -> None:
    """A file whose digest no longer matches its card is never loaded."""
    store = ModelStore(tmp_path)
    older = store.save(trained(settings))
    newer = store.save(trained(settings, minutes=5))
    artifact = tmp_path / f"model-{newer.version}.skops"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ModelStoreError, match="sha256 does not match"):
        store.load(tmp_path / f"model-{newer.version}.json")
    loaded = store.load_latest()
    assert loaded is not None and loaded.version == older.version


def test_a_card_pointing_outside_its_folder_is_refused(settings: Settings, tmp_path: Path) -> None:
    """The artifact named by a card must be a file beside it."""
    store = ModelStore(tmp_path)
    saved = store.save(trained(settings))
    card_path = tmp_path / f"model-{saved.version}.json"
    card = json.loads(card_path.read_text())
    card["artifact"]["file"] = "../elsewhere.skops"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match="missing"):
        store.load(card_path)


def test_only_the_last_versions_are_kept(settings: Settings, tmp_path: Path) -> None:
    """Old versions are pruned, artifacts with their cards."""
    store = ModelStore(tmp_path, keep=2)
    models = trained(settings)
    versions = [
        store.save(dataclasses.replace(models, version=f"2026101{i}T000000Z")).version
        for i in range(4)
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"model-{v}.{ext}" for v in versions[2:] for ext in ("json", "skops")
    )


def test_the_same_version_twice_gets_a_suffix(settings: Settings, tmp_path: Path) -> None:
    """Two trainings in the same second never overwrite each other."""
    store = ModelStore(tmp_path)
    first = store.save(trained(settings))
    second = store.save(trained(settings))
    assert second.version == f"{first.version}-2"


def test_no_history_is_not_enough_data(settings: Settings) -> None:
    """All-null data cannot be trained on; the error says so."""
    with pytest.raises(NotEnoughDataError, match="not enough history"):
        train_models(recorded_timeline("all_null_munich.json"), settings, NOW)
