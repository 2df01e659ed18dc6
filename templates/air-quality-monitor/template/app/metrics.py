"""Prometheus metrics of the service (module level: one registry per process)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "code"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent serving HTTP requests, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
CONCENTRATION = Gauge(
    "air_quality_concentration_ugm3",
    "Current 24-hour average concentration by pollutant (µg/m³); absent when unavailable.",
    ["pollutant"],
)
WHO_RATIO = Gauge(
    "air_quality_who_guideline_ratio",
    "Current 24-hour average as a multiple of the WHO 2021 24-hour guideline.",
    ["pollutant"],
)
ANOMALY_SCORE = Gauge(
    "air_quality_anomaly_score",
    "IsolationForest anomaly score of the current concentrations (0..1, higher is stranger).",
)
VERDICT = Gauge(
    "air_quality_verdict",
    "1 for the current verdict (clean, elevated or anomaly), 0 for the others.",
    ["verdict"],
)
DATA_AGE = Gauge(
    "air_quality_data_age_seconds", "Seconds since the data served was fetched from Open-Meteo."
)
FETCHES = Counter("air_quality_fetches", "Open-Meteo fetches, by outcome.", ["outcome"])
FETCH_ERRORS = Counter(
    "air_quality_fetch_errors",
    "Failed Open-Meteo fetches (after retries), by kind (rate_limited, unavailable, ...).",
    ["kind"],
)
FRESHNESS_CHECKS = Counter(
    "air_quality_freshness_checks",
    "Once-a-minute checks of the data served: fresh=true or false (the freshness SLO).",
    ["fresh"],
)
TRAININGS = Counter("air_quality_model_trainings", "Model trainings, by outcome.", ["outcome"])
MODEL_INFO = Gauge("air_quality_model_info", "1 for the model version in use.", ["version"])
MANUAL_CHECKS = Counter(
    "air_quality_manual_checks", "Manual anomaly checks, by verdict or invalid.", ["verdict"]
)
SERVED_MODEL = Gauge(
    "model_info",
    "1 for the model served: its registered name and version (the MLflow version when it "
    "came from or was logged to the registry, else the local version).",
    ["name", "version"],
)
REGISTRY_ERRORS = Counter(
    "model_registry_errors",
    "Failed model registry operations (log: a trained model not logged; load: the pinned "
    "version not loaded), by operation.",
    ["operation"],
)
