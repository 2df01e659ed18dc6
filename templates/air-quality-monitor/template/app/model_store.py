"""Model versions on disk: skops artifacts (never pickle) beside JSON model cards.

``model-<version>.skops`` holds the fitted estimators; ``model-<version>.json`` is its card
(version, metrics, parameters, training window, library versions and the artifact's
sha256). Loading checks the digest first, then lets skops build only the types this
service trusts, so a tampered file is refused instead of executed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import Ridge

from .anomaly import AnomalyModel
from .forecast import BacktestDay, Forecaster, Skill
from .training import TrainedModels

logger = logging.getLogger(__name__)

# The only type skops reports as untrusted for IsolationForest and Ridge.
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
ARTIFACT_FORMAT = 1
KEEP_VERSIONS = 5


class ModelStoreError(RuntimeError):
    """A stored model cannot be used (bad digest, unexpected types, unreadable card)."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _artifact(models: TrainedModels) -> dict[str, Any]:
    anomaly = models.anomaly
    return {
        "format": ARTIFACT_FORMAT,
        "anomaly": None
        if anomaly is None
        else {
            "features": list(anomaly.features),
            "forest": anomaly.forest,
            "range_max": list(anomaly.range_max),
            "contamination": anomaly.contamination,
        },
        "forecasters": {
            name: {"method": f.method, "model": f.model, "samples": f.samples}
            for name, f in models.forecasters.items()
        },
    }


def _write_atomically(path: Path, write: Any) -> None:
    handle, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(Path(scratch))
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def _skill(card_metrics: Mapping[str, Any]) -> Skill:
    days = []
    for item in card_metrics.get("days", []):
        days.append(
            BacktestDay(
                day=date.fromisoformat(item["date"]),
                predicted=float(item["predicted"]),
                persistence=float(item["persistence"]),
                actual=float(item["actual"]),
            )
        )
    return Skill(tuple(days))


class ModelStore:
    """The model versions of one replica, in ``directory``."""

    def __init__(self, directory: Path, keep: int = KEEP_VERSIONS) -> None:
        self.directory = directory
        self.keep = keep

    def save(self, models: TrainedModels) -> TrainedModels:
        """Write the artifact and its card; return the models with the complete card."""
        self.directory.mkdir(parents=True, exist_ok=True)
        version = models.version
        suffix = 1
        while (self.directory / f"model-{version}.json").exists():
            suffix += 1
            version = f"{models.version}-{suffix}"
        artifact = self.directory / f"model-{version}.skops"
        _write_atomically(artifact, lambda path: sio.dump(_artifact(models), path))
        card = {
            **models.card,
            "version": version,
            "artifact": {
                "file": artifact.name,
                "format": "skops",
                "sha256": sha256_of(artifact),
                "bytes": artifact.stat().st_size,
            },
        }
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
        _write_atomically(self.directory / f"model-{version}.json", lambda p: p.write_text(text))
        self._prune()
        logger.info("model %s saved", version, extra={"sha256": card["artifact"]["sha256"]})
        return TrainedModels(version, models.trained_at, models.anomaly, models.forecasters, card)

    def cards(self) -> list[Path]:
        """Return the card files, newest first."""
        return sorted(self.directory.glob("model-*.json"), reverse=True)

    def _prune(self) -> None:
        for card in self.cards()[self.keep :]:
            card.with_suffix(".skops").unlink(missing_ok=True)
            card.unlink(missing_ok=True)

    def load(self, card_path: Path) -> TrainedModels:
        """Load one version, checking its digest and the types it contains."""
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
            file_name = str(card["artifact"]["file"])
            expected = card["artifact"]["sha256"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ModelStoreError(f"{card_path.name}: unreadable card: {error}") from error
        artifact = card_path.parent / file_name
        if Path(file_name).name != file_name or not artifact.is_file():
            raise ModelStoreError(f"{card_path.name}: artifact {file_name!r} is missing")
        if sha256_of(artifact) != expected:
            raise ModelStoreError(f"{artifact.name}: sha256 does not match its card")
        untrusted = set(sio.get_untrusted_types(file=artifact)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ModelStoreError(f"{artifact.name}: untrusted types {sorted(untrusted)}")
        content = sio.load(artifact, trusted=TRUSTED_TYPES)
        return self._models(card, content, card_path.name)

    def _models(self, card: dict[str, Any], content: Any, name: str) -> TrainedModels:
        if not isinstance(content, dict) or content.get("format") != ARTIFACT_FORMAT:
            raise ModelStoreError(f"{name}: unknown artifact format")
        stored = content.get("anomaly")
        anomaly = None
        if stored is not None:
            if not isinstance(stored.get("forest"), IsolationForest):
                raise ModelStoreError(f"{name}: the anomaly model is not an IsolationForest")
            anomaly = AnomalyModel(
                features=tuple(stored["features"]),
                forest=stored["forest"],
                range_max=tuple(float(v) for v in stored["range_max"]),
                contamination=float(stored["contamination"]),
            )
        metrics = card.get("metrics", {}).get("forecast", {})
        forecasters = {}
        for pollutant, item in content.get("forecasters", {}).items():
            model = item.get("model")
            if model is not None and not isinstance(model, Ridge):
                raise ModelStoreError(f"{name}: the {pollutant} forecaster is not a Ridge")
            forecasters[pollutant] = Forecaster(
                pollutant,
                str(item["method"]),
                model,
                int(item["samples"]),
                _skill(metrics.get(pollutant, {})),
            )
        trained_at = datetime.fromisoformat(card["created_at"])
        return TrainedModels(card["version"], trained_at, anomaly, forecasters, card)

    def load_latest(self) -> TrainedModels | None:
        """Load the newest usable version; versions that fail the checks are skipped."""
        if not self.directory.is_dir():
            return None
        for card in self.cards():
            try:
                return self.load(card)
            except ModelStoreError as error:
                logger.warning("skipping stored model: %s", error)
        return None
