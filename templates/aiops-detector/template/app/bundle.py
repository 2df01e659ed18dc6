"""One model-registry version's files: every model one training made, in one skops file.

A training (``POST /train``) makes a model per query or inline series; the registry keeps
them together as one version of ``<service>-detector``, since they are trained, judged and
served together. The version's artifacts are ``model.skops`` (a list of the models' skops
contents, see :func:`.model_store.artifact_content`; never a pickle) and
``model-card.json`` (the training's facts, each model's own card, and ``model.skops``'s
sha256).

Reading a version checks, before anything is built from the file, that the digest the
registry's version tag names is the file's and the card's, and that the card is this
service's model; skops then builds only the types the service trusts.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import skops.io as sio

from .model_store import ModelStoreError, artifact_content, detector_from, load_trusted, sha256_of
from .training import TrainedModel

MODEL_FILE = "model.skops"
CARD_FILE = "model-card.json"
BUNDLE_FORMAT = 1


def write_bundle(
    folder: Path, models: Sequence[TrainedModel], facts: Mapping[str, Any]
) -> dict[str, Any]:
    """Write ``model.skops`` and ``model-card.json`` into ``folder``; return the card."""
    artifact = folder / MODEL_FILE
    content = {"format": BUNDLE_FORMAT, "models": [artifact_content(model) for model in models]}
    sio.dump(content, artifact, compression=zipfile.ZIP_DEFLATED)
    card = {
        **facts,
        "models": [dict(model.card) for model in models],
        "artifact": {
            "file": MODEL_FILE,
            "format": "skops",
            "sha256": sha256_of(artifact),
            "bytes": artifact.stat().st_size,
        },
    }
    text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
    (folder / CARD_FILE).write_text(text, encoding="utf-8")
    return card


def read_bundle(
    folder: Path, expected_sha256: str, name: str
) -> tuple[list[TrainedModel], dict[str, Any]]:
    """Load a version's models, refusing any file that is not exactly what was registered.

    ``expected_sha256`` is the registry's ``sha256`` tag of the version, ``name`` the
    registered model this service serves.
    """
    artifact = folder / MODEL_FILE
    try:
        card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
        carded = str(card["artifact"]["sha256"])
        cards = list(card["models"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelStoreError(f"{CARD_FILE}: unreadable card: {error}") from error
    if not artifact.is_file():
        raise ModelStoreError(f"{MODEL_FILE} is missing")
    digest = sha256_of(artifact)
    if digest != expected_sha256:
        raise ModelStoreError(
            f"{MODEL_FILE}: sha256 {digest} is not the registered version's {expected_sha256}"
        )
    if carded != digest:
        raise ModelStoreError(f"{CARD_FILE}: sha256 {carded} is not {MODEL_FILE}'s {digest}")
    if card.get("name") != name:
        raise ModelStoreError(f"{CARD_FILE}: the model is {card.get('name')!r}, not {name!r}")
    content = load_trusted(artifact)
    if not isinstance(content, dict) or content.get("format") != BUNDLE_FORMAT:
        raise ModelStoreError(f"{MODEL_FILE}: unknown bundle format")
    items = content.get("models")
    if not isinstance(items, list) or len(items) != len(cards):
        raise ModelStoreError(f"{MODEL_FILE}: the card and the file hold other models")
    models = []
    for number, (item, model_card) in enumerate(zip(items, cards, strict=True)):
        where = f"{MODEL_FILE} models[{number}]"
        source, detector = detector_from(item, where)
        try:
            if model_card["source"] != source.as_dict():
                raise ModelStoreError(f"{where}: the card names another source")
            version, trained_at = model_card["version"], model_card["created_at"]
            models.append(
                TrainedModel(
                    source, detector, str(version), datetime.fromisoformat(trained_at), model_card
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelStoreError(f"{CARD_FILE} models[{number}]: {error}") from error
    return models, card
