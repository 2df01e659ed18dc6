"""In-process retrieval timings of a rendered rag-llm-service, run by ``benchmarks/rag.py``.

Run with the python of a venv holding the service's dependencies (the runtime lock's, or
one with the ``model`` extra), never the portal's: ``python rag_probe.py CONFIG_JSON``
with ``DATA_DIR`` and ``EMBEDDING_MODE`` in the environment. The rendered ``app`` package is
imported by its path under a private name (its relative imports resolve through it). The
probe opens the service's ``ChunkStore`` on ``DATA_DIR`` (ingesting ``corpus`` first with
the service's ``Ingestor`` when the index of that mode is empty), times
``Retriever.retrieve`` (the question's embedding plus the search of the in-process
matrix) and its two parts, then reopens the same collection with ``in_process_search``
off and times qdrant-client's own ``query_points`` on the same points: the baseline.
Prints one line ``RESULT <json>``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

PACKAGE = "rag_bench_app"
DENSE_POINTS = 10_000


def app_module(render: Path, name: str) -> ModuleType:
    """Import ``app.<name>`` of the render by path (the package once, under ``PACKAGE``)."""
    if PACKAGE not in sys.modules:
        folder = render / "app"
        spec = importlib.util.spec_from_file_location(
            PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        assert spec is not None
        assert spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{PACKAGE}.{name}")


def samples(
    call: Callable[[str], Any], questions: list[str], runs: int, warm_up: int | None = None
) -> list[float]:
    """Call ``call`` on the questions in turn, ``runs`` times, after ``warm_up`` untimed calls
    (default one round of the questions)."""
    for number in range(len(questions) if warm_up is None else warm_up):
        call(questions[number % len(questions)])
    timings = []
    for number in range(runs):
        question = questions[number % len(questions)]
        started = time.perf_counter()
        call(question)
        timings.append(time.perf_counter() - started)
    return timings


def model_extras(
    render: Path, embedder: Any, retriever: Any, questions: list[str], runs: int, k: int
) -> dict[str, Any]:
    """Model mode: retrieval with PyTorch on one thread, and a 10,000-point dense search.

    Embedding 10,000 chunks with the model takes many minutes on a CPU, so the search of a
    matrix that size is timed on random unit vectors (its cost does not depend on them).
    """
    torch = importlib.import_module("torch")
    threads = torch.get_num_threads()

    def on(count: int) -> Callable[[str], Any]:
        def call(question: str) -> Any:
            torch.set_num_threads(count)
            return retriever.retrieve(question)

        return call

    pair = interleaved({"default": on(threads), "one": on(1)}, questions, runs)
    torch.set_num_threads(threads)
    extras: dict[str, Any] = {"torch_threads": threads, "retrieve_one_thread": pair["one"]}
    extras["retrieve_default_threads"] = pair["default"]
    numpy = importlib.import_module("numpy")
    rng = numpy.random.default_rng(0)
    vectors = rng.normal(size=(DENSE_POINTS, 384)).astype(numpy.float32)
    vectors /= numpy.linalg.norm(vectors, axis=1, keepdims=True)
    matrix = app_module(render, "vector_matrix").VectorMatrix(sparse=False)
    ids = [f"point-{number}" for number in range(DENSE_POINTS)]
    matrix.add(ids, [{"source": f"doc-{n % 500}.md"} for n in range(DENSE_POINTS)], vectors)
    queries = {question: embedder.embed_query(question).matrix for question in questions}
    extras["search_10k"] = samples(lambda q: matrix.search(queries[q], k), questions, runs)
    return extras


def interleaved(
    calls: dict[str, Callable[[str], Any]], questions: list[str], runs: int
) -> dict[str, list[float]]:
    """Time several calls in turn on the same question, so a busy moment of the machine
    weighs on all of them alike (one warm-up round of the questions first)."""
    for call in calls.values():
        for question in questions:
            call(question)
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for number in range(runs):
        question = questions[number % len(questions)]
        for name, call in calls.items():
            started = time.perf_counter()
            call(question)
            timings[name].append(time.perf_counter() - started)
    return timings


def main() -> None:
    """Measure as the config (argv[1], JSON) says; print ``RESULT`` and the figures."""
    config: dict[str, Any] = json.loads(sys.argv[1])
    render = Path(config["render"])
    questions: list[str] = config["questions"]
    settings_module = app_module(render, "settings")
    embeddings = app_module(render, "embeddings")
    vectorstore = app_module(render, "vectorstore")
    settings = settings_module.Settings.from_env()
    rag = app_module(render, "rag_config").load_rag_config(render / "rag.yaml")
    result: dict[str, Any] = {"mode": settings.embedding_mode}

    started = time.perf_counter()
    embedder = embeddings.embedder_for(settings.embedding_mode)
    result["load_embedder_seconds"] = time.perf_counter() - started
    result["description"] = embedder.description
    started = time.perf_counter()
    store = vectorstore.ChunkStore(settings, embedder)
    result["open_seconds"] = time.perf_counter() - started
    try:
        if store.count() == 0 and config.get("corpus"):
            ingestor = app_module(render, "ingest").Ingestor(store, rag, settings.max_upload_bytes)
            started = time.perf_counter()
            report = ingestor.ingest_folder(Path(config["corpus"]))
            result["ingest_seconds"] = time.perf_counter() - started
            result["ingest_errors"] = len(report.errors)
        result["chunks"] = store.count()
        retriever = app_module(render, "retrieval").Retriever(store, rag)
        runs = int(config["runs"])
        queries = {question: embedder.embed_query(question) for question in questions}
        calls: dict[str, Callable[[str], Any]] = {
            "retrieve": retriever.retrieve,
            "embed": embedder.embed_query,
            "search": lambda q: store.search(queries[q], rag.top_k),
        }
        result |= interleaved(calls, questions, runs)
        result["hits"] = sum(len(retriever.retrieve(q)) for q in questions) / len(questions)
        if settings.embedding_mode == "model":
            result |= model_extras(render, embedder, retriever, questions, runs, rag.top_k)
    finally:
        store.close()
    # The baseline: the same collection searched by qdrant-client's embedded query_points.
    plain = vectorstore.ChunkStore(settings, embedder, in_process_search=False)
    try:
        baseline_runs = int(config["baseline_runs"])
        result["baseline"] = samples(
            lambda q: plain.search(queries[q], rag.top_k), questions, baseline_runs, warm_up=1
        )
    finally:
        plain.close()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
