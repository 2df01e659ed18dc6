"""Models on disk: skops artifacts (never pickle) beside JSON model cards.

Each source (query or inline series) has a folder named by its identifier holding
``model-<version>.skops`` (the forest, the seasonal baselines, the calibration) and
``model-<version>.json``, its card (source, training window, threshold, parameters,
library versions and the artifact's sha256). Loading checks the digest first, then lets
skops build only the types this service trusts, so a tampered file is refused, not run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import IsolationForest

from .detector import Calibration, Detector, SeriesProfile
from .features import FEATURES
from .seasonal import SLOTS, SeasonalBaseline
from .series import series_key
from .training import Source, TrainedModel

logger = logging.getLogger(__name__)

# The only type skops reports as untrusted in an IsolationForest.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
ARTIFACT_FORMAT = 1
KEEP_VERSIONS = 3


class ModelStoreError(RuntimeError):
    """A stored model cannot be used (bad digest, unexpected types, unreadable card)."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(Path(scratch))
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def artifact_content(model: TrainedModel) -> dict[str, Any]:
    """Return what a skops file holds of one model: the forest, calibration and baselines."""
    detector = model.detector
    return {
        "format": ARTIFACT_FORMAT,
        "source": model.source.as_dict(),
        "step": detector.step,
        "features": list(detector.features),
        "forest": detector.forest,
        "calibration": {
            "forest_center": detector.calibration.forest_center,
            "forest_scale": detector.calibration.forest_scale,
            "threshold": detector.calibration.threshold,
            "false_alarm_rate": detector.calibration.false_alarm_rate,
            "training_alarm_rate": detector.calibration.training_alarm_rate,
            "training_points": detector.calibration.training_points,
        },
        "profiles": [
            {
                "labels": dict(profile.labels),
                "center": profile.center,
                "scale": profile.scale,
                "points": profile.points,
                "start": profile.start,
                "end": profile.end,
                "medians": profile.seasonal.medians,
                "scales": profile.seasonal.scales,
                "levels": profile.seasonal.levels,
                "counts": profile.seasonal.counts,
            }
            for profile in detector.profiles.values()
        ],
    }


def _slot_array(item: Mapping[str, Any], name: str, dtype: type, where: str) -> Any:
    array = item.get(name)
    if not isinstance(array, np.ndarray) or array.shape != (SLOTS,):
        raise ModelStoreError(f"{where}: {name} is not an array of {SLOTS} slots")
    return array.astype(dtype)


def detector_from(content: Any, where: str) -> tuple[Source, Detector]:
    """Rebuild a model's source and detector from :func:`artifact_content` (``where`` names it)."""
    if not isinstance(content, dict) or content.get("format") != ARTIFACT_FORMAT:
        raise ModelStoreError(f"{where}: unknown artifact format")
    if not isinstance(content.get("forest"), IsolationForest):
        raise ModelStoreError(f"{where}: the model is not an IsolationForest")
    try:
        stored = content["source"]
        kind = stored["kind"]
        source = Source(kind, stored["query" if kind == "query" else "name"])
        features = tuple(str(name) for name in content["features"])
        if kind not in ("query", "series") or not set(features) <= set(FEATURES):
            raise ModelStoreError(f"{where}: unknown source kind or features")
        stored_calibration = content["calibration"]
        calibration = Calibration(
            forest_center=float(stored_calibration["forest_center"]),
            forest_scale=float(stored_calibration["forest_scale"]),
            threshold=float(stored_calibration["threshold"]),
            false_alarm_rate=float(stored_calibration["false_alarm_rate"]),
            training_alarm_rate=float(stored_calibration["training_alarm_rate"]),
            training_points=int(stored_calibration["training_points"]),
        )
        profiles = {}
        for item in content["profiles"]:
            labels = {str(k): str(v) for k, v in item["labels"].items()}
            seasonal = SeasonalBaseline(
                medians=_slot_array(item, "medians", np.float64, where),
                scales=_slot_array(item, "scales", np.float64, where),
                levels=_slot_array(item, "levels", np.int64, where),
                counts=_slot_array(item, "counts", np.int64, where),
            )
            profiles[series_key(labels)] = SeriesProfile(
                labels=labels,
                center=float(item["center"]),
                scale=float(item["scale"]),
                seasonal=seasonal,
                points=int(item["points"]),
                start=float(item["start"]),
                end=float(item["end"]),
            )
        detector = Detector(
            float(content["step"]), features, content["forest"], profiles, calibration
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelStoreError(f"{where}: malformed artifact: {error}") from error
    return source, detector


def load_trusted(artifact: Path) -> Any:
    """Load a skops file, refusing it when it holds a type beyond skops' and ours."""
    untrusted = set(sio.get_untrusted_types(file=artifact)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ModelStoreError(f"{artifact.name}: untrusted types {sorted(untrusted)}")
    return sio.load(artifact, trusted=TRUSTED_TYPES)


def _order(card: Path) -> tuple[str, int]:
    stamp, _, suffix = card.stem.removeprefix("model-").partition("-")
    return stamp, int(suffix) if suffix.isdigit() else 1


def newest_first(folder: Path) -> list[Path]:
    """Return the cards of a folder, newest first (``model-<time>-2`` is newer than ``<time>``)."""
    return sorted(folder.glob("model-*.json"), key=_order, reverse=True)


class ModelStore:
    """The model versions of one replica, one folder per source under ``directory``."""

    def __init__(self, directory: Path, keep: int = KEEP_VERSIONS) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, model: TrainedModel) -> TrainedModel:
        """Write the artifact and its card; return the model with the complete card."""
        folder = self.directory / model.source.ident
        folder.mkdir(parents=True, exist_ok=True)
        # The next suffix after the highest kept one: a pruned name is never given again.
        taken = [_order(card) for card in folder.glob(f"model-{model.version}*.json")]
        suffix = max((n for stamp, n in taken if stamp == model.version), default=0) + 1
        version = model.version if suffix == 1 else f"{model.version}-{suffix}"
        artifact = folder / f"model-{version}.skops"
        content = artifact_content(model)
        _write_atomically(
            artifact, lambda path: sio.dump(content, path, compression=zipfile.ZIP_DEFLATED)
        )
        card = {
            **model.card,
            "version": version,
            "artifact": {
                "file": artifact.name,
                "format": "skops",
                "sha256": sha256_of(artifact),
                "bytes": artifact.stat().st_size,
            },
        }
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
        _write_atomically(folder / f"model-{version}.json", lambda p: p.write_text(text))
        for old in newest_first(folder)[self.keep :]:
            old.with_suffix(".skops").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
        logger.info("model %s saved", card["name"], extra={"version": version})
        return TrainedModel(model.source, model.detector, version, model.trained_at, card)

    def load(self, card_path: Path) -> TrainedModel:
        """Load one version, checking its digest and the types it contains."""
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            file_name = str(card["artifact"]["file"])
            expected = card["artifact"]["sha256"]
            trained_at = datetime.fromisoformat(card["created_at"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelStoreError(f"{card_path.name}: unreadable card: {error}") from error
        artifact = card_path.parent / file_name
        if Path(file_name).name != file_name or not artifact.is_file():
            raise ModelStoreError(f"{card_path.name}: artifact {file_name!r} is missing")
        if sha256_of(artifact) != expected:
            raise ModelStoreError(f"{artifact.name}: sha256 does not match its card")
        source, detector = detector_from(load_trusted(artifact), artifact.name)
        if card.get("source") != source.as_dict():
            raise ModelStoreError(f"{card_path.name}: the card and the artifact name other sources")
        return TrainedModel(source, detector, str(card["version"]), trained_at, card)

    def load_all(self) -> list[TrainedModel]:
        """Load each source's newest usable version (versions failing the checks are skipped)."""
        models = []
        folders = (
            sorted(p for p in self.directory.iterdir() if p.is_dir())
            if self.directory.is_dir()
            else []
        )
        for folder in folders:
            for card in newest_first(folder):
                try:
                    models.append(self.load(card))
                    break
                except ModelStoreError as error:
                    logger.warning("skipping stored model: %s", error)
        return models
