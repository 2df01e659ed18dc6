"""A registry version's files: every model of one training in one skops file and one card."""

from __future__ import annotations

import functools
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from app.bundle import CARD_FILE, MODEL_FILE, read_bundle, write_bundle
from app.model_store import ModelStoreError, sha256_of
from app.training import Source, TrainedModel, Window, train_model

from .synthetic import START, Anomaly, series

NOW = datetime(2026, 3, 12, 12, 0, tzinfo=UTC)
NAME = "checkout-aiops-detector"


@pytest.fixture(scope="module")
def models() -> list[TrainedModel]:
    """Return the two models of one training: a query of two series and an inline series."""
    window = Window(START.timestamp(), START.timestamp() + 2 * 86400, 300.0)
    pods = [series(2, seed=51, labels={"pod": "a"}), series(2, seed=52, labels={"pod": "b"})]
    query = train_model(Source("query", "up"), pods, window, 0.001, "checkout-aiops", NOW)
    inline = train_model(
        Source("series", "cpu"), [series(2, seed=53)], window, 0.001, "checkout-aiops", NOW
    )
    return [query, inline]


@pytest.fixture(scope="module")
def written(models: list[TrainedModel], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a folder holding the models' version files, written once."""
    folder = tmp_path_factory.mktemp("version")
    write_bundle(folder, models, {"name": NAME})
    return folder


def _written(folder: Path, written: Path) -> str:
    """Copy the version's files into ``folder`` (a test may alter them); return the digest."""
    shutil.copytree(written, folder, dirs_exist_ok=True)
    return str(json.loads((folder / CARD_FILE).read_text())["artifact"]["sha256"])


def test_a_version_loads_back_every_model_scoring_the_same(
    tmp_path: Path, models: list[TrainedModel], written: Path
) -> None:
    """Both sources come back from one file, with their cards, and score as before."""
    digest = _written(tmp_path, written)
    assert digest == sha256_of(tmp_path / MODEL_FILE)
    loaded, card = read_bundle(tmp_path, digest, NAME)
    assert [model.source for model in loaded] == [model.source for model in models]
    assert [model.card for model in loaded] == [dict(model.card) for model in models]
    assert card["name"] == NAME and card["artifact"]["format"] == "skops"
    fresh = series(1, seed=54, start=START + timedelta(days=3), anomalies=[Anomaly(100, 3, 50)])
    before, after = models[1].detector.scores(fresh), loaded[1].detector.scores(fresh)
    assert np.array_equal(before.combined, after.combined)


def test_a_file_that_is_not_the_registered_digest_is_refused(tmp_path: Path, written: Path) -> None:
    """The registry's tag, the file and the card must agree before anything is built."""
    digest = _written(tmp_path, written)
    with pytest.raises(ModelStoreError, match="is not the registered version's"):
        read_bundle(tmp_path, "f" * 64, NAME)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["artifact"]["sha256"] = "f" * 64
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match=f"{CARD_FILE}: sha256 f+ is not"):
        read_bundle(tmp_path, digest, NAME)


def test_another_services_model_is_refused(tmp_path: Path, written: Path) -> None:
    """A version of another registered model is never served, whatever its digest."""
    digest = _written(tmp_path, written)
    with pytest.raises(ModelStoreError, match="not 'payments-detector'"):
        read_bundle(tmp_path, digest, "payments-detector")


def test_a_file_with_untrusted_types_is_never_built(tmp_path: Path, written: Path) -> None:
    """Even registered with a matching digest, skops refuses types outside the trusted list."""
    _written(tmp_path, written)
    artifact = tmp_path / MODEL_FILE
    sio.dump({"format": 1, "models": [functools.partial(print, "owned")]}, artifact)
    digest = sha256_of(artifact)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    card["artifact"]["sha256"] = digest
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(ModelStoreError, match="untrusted types"):
        read_bundle(tmp_path, digest, NAME)
