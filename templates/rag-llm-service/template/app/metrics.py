"""Prometheus metrics of the service (module level: one registry per process).

HTTP requests (the contract's, for the availability SLO), LLM calls (requests by model,
prompt version and status; tokens; latency and time to first token, in buckets that fit
LLM latencies from tens of milliseconds to a minute) and retrieval (latency, hits).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "code"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent serving HTTP requests, by method and route template (a stream: until its "
    "headers are sent).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# A chat completion takes from ~50 ms (a cached short answer) to a minute (a long one on a
# busy CPU server); the default buckets stop at 10 s.
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
LLM_REQUESTS = Counter(
    "llm_requests",
    "Answers generated, by model (the LLM's, or 'extractive'), prompt version and status "
    "(ok, error).",
    ["model", "prompt_version", "status"],
)
LLM_TOKENS = Counter(
    "llm_tokens",
    "Tokens of LLM calls, by type (prompt, completion) and model; from the endpoint's usage, "
    "or estimated (characters / 4) when it reports none.",
    ["type", "model"],
)
LLM_LATENCY = Histogram(
    "llm_request_latency_seconds",
    "Time from sending a chat completion to its last token, by model.",
    ["model"],
    buckets=LLM_BUCKETS,
)
LLM_TIME_TO_FIRST_TOKEN = Histogram(
    "llm_time_to_first_token_seconds",
    "Time from sending a streamed chat completion to its first token, by model.",
    ["model"],
    buckets=LLM_BUCKETS,
)
RETRIEVAL_LATENCY = Histogram(
    "rag_retrieval_latency_seconds",
    "Time to embed a question and find its passages, by embedding mode.",
    ["embedding"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RETRIEVAL_HITS = Histogram(
    "rag_retrieval_hits",
    "Passages found above the relevance threshold per question (0: 'I don't know').",
    ["embedding"],
    buckets=(0, 1, 2, 3, 5, 10, 20),
)
