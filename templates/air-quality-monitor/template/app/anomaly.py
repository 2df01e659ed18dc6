"""The anomaly model: an IsolationForest over the vector of hourly concentrations.

It learns what the last days looked like in this city, so a pollution wave stands out from
ordinary fluctuation. Concentrations are log-scaled (a doubling counts the same at any
level). An IsolationForest cannot rank points beyond the range it was trained on (they land
in the same leaves as the most extreme training point), so a value far above everything it
saw (more than ``BEYOND_RANGE_FACTOR`` times the highest) is anomalous by that rule too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest

from .assessment import AnomalyScore
from .timeline import Timeline

MIN_TRAINING_HOURS = 24
BEYOND_RANGE_FACTOR = 1.5
N_ESTIMATORS = 100
RANDOM_STATE = 0  # every replica trains the same model from the same data


@dataclasses.dataclass(frozen=True)
class AnomalyModel:
    """A fitted IsolationForest and what it was trained on."""

    features: tuple[str, ...]
    forest: IsolationForest
    range_max: tuple[float, ...]
    contamination: float

    def score(self, values: Mapping[str, float]) -> AnomalyScore:
        """Score one vector of concentrations (µg/m³) given by pollutant."""
        vector = np.log1p(np.array([[values[name] for name in self.features]], dtype=float))
        raw = float(self.forest.score_samples(vector)[0])
        threshold = float(-self.forest.offset_)
        beyond = tuple(
            name
            for name, highest in zip(self.features, self.range_max, strict=True)
            if values[name] > BEYOND_RANGE_FACTOR * max(highest, 1.0)
        )
        return AnomalyScore(
            score=-raw,
            threshold=threshold,
            anomalous=-raw > threshold or bool(beyond),
            beyond_range=beyond,
            features=self.features,
        )

    def parameters(self) -> dict[str, object]:
        """Describe the model for its card."""
        return {
            "algorithm": "sklearn.ensemble.IsolationForest",
            "features": list(self.features),
            "transform": "log1p",
            "n_estimators": N_ESTIMATORS,
            "contamination": self.contamination,
            "random_state": RANDOM_STATE,
            "beyond_range_factor": BEYOND_RANGE_FACTOR,
        }


def training_matrix(
    timeline: Timeline, pollutants: Sequence[str]
) -> tuple[tuple[str, ...], NDArray[np.float64]]:
    """Return the features (pollutants with history) and the complete hourly rows of history."""
    features = tuple(name for name in pollutants if timeline.available(name))
    columns = [timeline.observed(name) for name in features]
    rows = [list(row) for row in zip(*columns, strict=True) if all(v is not None for v in row)]
    return features, np.array(rows, dtype=float).reshape(len(rows), len(features))


def train_anomaly_model(
    timeline: Timeline, pollutants: Sequence[str], contamination: float
) -> AnomalyModel | None:
    """Fit the model on the history; None with fewer than ``MIN_TRAINING_HOURS`` hours."""
    features, matrix = training_matrix(timeline, pollutants)
    if not features or len(matrix) < MIN_TRAINING_HOURS:
        return None
    forest = IsolationForest(
        n_estimators=N_ESTIMATORS, contamination=contamination, random_state=RANDOM_STATE
    )
    forest.fit(np.log1p(matrix))
    return AnomalyModel(
        features=features,
        forest=forest,
        range_max=tuple(float(value) for value in matrix.max(axis=0)),
        contamination=contamination,
    )
