"""Models on disk: skops artifacts beside JSON cards, checked when loaded."""

from __future__ import annotations

import functools
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sklearn
import skops.io as sio

from app.model_store import ModelStore, ModelStoreError, newest_first, sha256_of
from app.training import Source, TrainedModel, Window, train_model

from .synthetic import START, Anomaly, series

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
QUERY = 'sum by (pod) (rate(http_requests_total{job="checkout"}[5m]))'


@pytest.fixture(scope="module")
def model() -> TrainedModel:
    """Return a model of one query over two series, trained at NOW."""
    items = [series(8, seed=21, labels={"pod": "a"}), series(8, seed=22, labels={"pod": "b"})]
    window = Window(START.timestamp(), START.timestamp() + 8 * 86400, 300.0)
    return train_model(Source("query", QUERY), items, window, 0.001, "checkout-aiops", NOW)


def _saved(tmp_path: Path, model: TrainedModel) -> tuple[ModelStore, TrainedModel, Path]:
    store = ModelStore(tmp_path)
    saved = store.save(model)
    return store, saved, tmp_path / model.source.ident / f"model-{saved.version}.json"


def test_save_writes_a_skops_artifact_and_its_card(tmp_path: Path, model: TrainedModel) -> None:
    """The card names the query, window, threshold, versions and the artifact's sha256."""
    _, saved, card_path = _saved(tmp_path, model)
    card = json.loads(card_path.read_text())
    artifact = card_path.with_suffix(".skops")
    assert card == saved.card and card["version"] == saved.version == "20260312T120000Z"
    assert card["query"] == QUERY and card["source"] == {"kind": "query", "query": QUERY}
    assert (
        card["artifact"]["sha256"] == sha256_of(artifact) and card["artifact"]["format"] == "skops"
    )
    assert card["training_window"]["start"] == "2026-03-02T00:00:00Z"
    assert card["training_window"]["step_seconds"] == 300.0
    assert (
        card["training_window"]["points"] == 2 * 8 * 288 and card["training_window"]["series"] == 2
    )
    assert card["threshold"]["false_alarm_rate"] == 0.001
    assert card["threshold"]["value"] == pytest.approx(saved.detector.calibration.threshold)
    assert card["libraries"]["scikit-learn"] == sklearn.__version__
    assert [item["labels"] for item in card["series"]] == [{"pod": "a"}, {"pod": "b"}]
    assert zipfile.is_zipfile(artifact)  # the skops format, not a pickle stream
    with zipfile.ZipFile(artifact) as archive:
        assert "schema.json" in archive.namelist()


def test_a_saved_model_loads_back_scoring_the_same(tmp_path: Path, model: TrainedModel) -> None:
    """Same scores after the round trip, for each series."""
    store, saved, _ = _saved(tmp_path, model)
    (loaded,) = store.load_all()
    assert loaded.source == saved.source and loaded.version == saved.version
    assert loaded.card == saved.card
    later = START + timedelta(days=9)
    for pod, seed in (("a", 23), ("b", 24)):
        fresh = series(
            1, seed=seed, start=later, labels={"pod": pod}, anomalies=[Anomaly(150, 3, 50)]
        )
        before, after = saved.detector.scores(fresh), loaded.detector.scores(fresh)
        assert np.array_equal(before.combined, after.combined)
        assert loaded.detector.detect(fresh).windows == saved.detector.detect(fresh).windows


def test_a_tampered_artifact_is_refused_and_the_older_version_used(
    tmp_path: Path, model: TrainedModel
) -> None:
    """A file whose digest no longer matches its card is never loaded."""
    store, older, _ = _saved(tmp_path, model)
    newer = store.save(model)
    assert newer.version == f"{older.version}-2"
    folder = tmp_path / model.source.ident
    assert newest_first(folder)[0].name == f"model-{newer.version}.json"
    artifact = folder / f"model-{newer.version}.skops"
    artifact.write_bytes(artifact.read_bytes() + b"tampered")
    with pytest.raises(ModelStoreError, match="sha256 does not match"):
        store.load(folder / f"model-{newer.version}.json")
    (loaded,) = store.load_all()
    assert loaded.version == older.version


def test_an_artifact_with_untrusted_types_is_never_built(
    tmp_path: Path, model: TrainedModel
) -> None:
    """Even with a matching digest, skops refuses types outside the trusted list."""
    store, _, card_path = _saved(tmp_path, model)
    artifact = card_path.with_suffix(".skops")
    sio.dump({"format": 1, "forest": functools.partial(print, "owned")}, artifact)
    card = json.loads(card_path.read_text())
    card["artifact"]["sha256"] = sha256_of(artifact)
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match="untrusted types"):
        store.load(card_path)


def test_a_card_pointing_outside_its_folder_is_refused(tmp_path: Path, model: TrainedModel) -> None:
    """The artifact named by a card must be a file beside it, even a valid one elsewhere."""
    store, _, card_path = _saved(tmp_path, model)
    elsewhere = tmp_path / "elsewhere.skops"
    elsewhere.write_bytes(card_path.with_suffix(".skops").read_bytes())
    card = json.loads(card_path.read_text())
    card["artifact"]["file"] = "../elsewhere.skops"
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match="missing"):
        store.load(card_path)


def test_only_the_last_versions_are_kept(tmp_path: Path, model: TrainedModel) -> None:
    """Older versions are pruned, artifacts with their cards."""
    store = ModelStore(tmp_path, keep=2)
    versions = [store.save(model).version for _ in range(4)]
    folder = tmp_path / model.source.ident
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"model-{v}.{ext}" for v in versions[2:] for ext in ("json", "skops")
    )
