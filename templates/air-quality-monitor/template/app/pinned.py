"""The pinned model version: downloaded from the registry, verified, then loaded.

An environment pins a version of the registered model (``MODEL_VERSION`` or ``MODEL_URI``
in ``deploy/overlays/<env>/model.yaml``). It is served only when three digests agree: the
version's ``sha256`` tag, the downloaded skops file's own digest and the digest its card
records; and when the card names this service's model and the model fits the configured
pollutants. Then skops builds only the types this service trusts (as for stored versions).
Anything else raises :class:`PinError` and the service keeps not serving a model.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from .model_record import TAG_SHA256, ModelRegistry, RegistryError
from .model_store import ModelStore, ModelStoreError, sha256_of
from .settings import Settings
from .training import TrainedModels


class PinError(RuntimeError):
    """The pinned version cannot be served; the message says why."""


def _verified(settings: Settings, version: str, artifact: Path, card: Path, tag: str) -> None:
    name = settings.registered_model
    where = f"version {version} of {name}"
    if not tag:
        raise PinError(f"{where} has no sha256 tag: it cannot be verified, so it is not served")
    if not artifact.is_file() or not card.is_file():
        raise PinError(f"{where} lacks model/model.skops or model/model-card.json")
    digest = sha256_of(artifact)
    if digest != tag:
        raise PinError(f"{where}: the sha256 of model.skops ({digest}) is not its tag ({tag})")
    try:
        described = json.loads(card.read_text(encoding="utf-8"))
        recorded = described["artifact"]["sha256"]
        card_name = described["name"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PinError(f"{where}: unreadable model card: {error}") from error
    if recorded != tag:
        raise PinError(f"{where}: the card's sha256 ({recorded}) is not its tag ({tag})")
    if card_name != name:
        raise PinError(f"{where}: its card describes the model {card_name!r}, not {name!r}")


def load_pinned(registry: ModelRegistry, settings: Settings) -> TrainedModels:
    """Download, verify and load the pinned version; :class:`PinError` when it cannot be."""
    version = settings.model_version
    with tempfile.TemporaryDirectory(prefix="pinned-model-") as scratch:
        try:
            downloaded = registry.download(version, Path(scratch))
        except RegistryError as error:
            raise PinError(str(error)) from error
        tag = downloaded.tags.get(TAG_SHA256, "")
        _verified(settings, version, downloaded.artifact, downloaded.card, tag)
        try:
            models = ModelStore(downloaded.card.parent).load(downloaded.card)
        except ModelStoreError as error:
            raise PinError(f"version {version}: {error}") from error
    anomaly = models.anomaly
    if anomaly is None or not set(anomaly.features) <= set(settings.pollutants):
        features = list(anomaly.features) if anomaly else []
        raise PinError(
            f"version {version} was trained on {features}, "
            f"not a subset of the configured pollutants {list(settings.pollutants)}"
        )
    return dataclasses.replace(models, registered_version=downloaded.version)
