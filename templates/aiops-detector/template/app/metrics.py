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
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ANOMALY_SCORE = Gauge(
    "aiops_anomaly_score",
    "Latest score of a trained query (its most anomalous series), relative to the alarm "
    "threshold: above 1 is anomalous, from 2 critical.",
    ["query"],
)
ANOMALIES = Counter(
    "aiops_anomalies",
    "Anomalous points found by the background evaluation, each point counted once.",
    ["query", "severity"],
)
EVALUATIONS = Counter(
    "aiops_evaluations",
    "Background evaluations of a trained query, by outcome (ok, prometheus_error, error).",
    ["outcome"],
)
TRAININGS = Counter("aiops_trainings", "Models trained, by source kind.", ["kind"])
MODELS = Gauge("aiops_models", "Models this replica holds (one per query or inline series).")
MODEL_INFO = Gauge(
    "model_info",
    "The model this replica serves: its registered name and version (the registry's version "
    "number, or the local version of the newest model when nothing was registered).",
    ["name", "version"],
)
REGISTRY_ERRORS = Counter(
    "model_registry_errors",
    "Failed calls to the model registry (MLflow), by operation (log, load); a failed log "
    "never fails a training.",
    ["operation"],
)
