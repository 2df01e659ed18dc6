"""RAG LLM service benchmark (issue 15): ingestion, retrieval over 10,000 chunks, hit@5, answers.

Run ``.venv/bin/python benchmarks/rag.py [--runs 50] [--model-python PYTHON]``.

The template is rendered with its default answers through the portal's own publish/render
path, and served as its image runs it: uvicorn from a venv of its runtime lock
(``tests.templates.service_venv.lock_venv``, from the wheelhouse), offline, on a port (not
``--fd``: see ``benchmarks/aiops.py``), with ``INGEST_ON_START=false`` so ingestion is
what the benchmark times.

(a) **Ingestion of the shipped documents**: ``POST /api/ingest/folder`` (the docs folder)
on a fresh index, then again with nothing changed: seconds and chunks.

(b) **Retrieval over 10,000 chunks, lexical mode.** A corpus is generated (fixed seed): the
shipped runbooks' paragraphs recombined two by two, a fifth of their words replaced by
words of a synthetic 30,000-word vocabulary drawn Zipf-like (so the hashed space is as
varied as a real team's documents), each under a heading short enough to be one chunk, 20
sections a document. It is ingested over HTTP (``POST /api/ingest/folder`` with its path
under ``DATA_DIR``), then the evaluation set's questions are asked in turn: ``POST
/api/ask`` with the extractive answerer (retrieval, quoting and HTTP). After the server
stops, ``benchmarks/rag_probe.py`` runs in the same venv on the same index: the service's
``Retriever.retrieve`` in process (the question's embedding and the search of the
in-process matrix, also timed apart), and beside it, the baseline of the same run:
qdrant-client's embedded ``query_points`` on the same points (the service's
``ChunkStore`` with ``in_process_search=False``), which scores every point in Python.

(c) **With the model** (``--model-python``: the python of a venv with the template's
``model`` extra, i.e. sentence-transformers, PyTorch and all-MiniLM-L6-v2's weights): the
probe ingests the corpus's first ``--model-sections`` chunks (1,000: the model embeds a
chunk in ~40 ms of CPU, 10,000 would take minutes more) in process in
``EMBEDDING_MODE=model`` (``HF_HUB_OFFLINE=1``) and times the same retrieval and baseline
(dense vectors), the retrieval again with PyTorch on one thread, and the search of a
10,000-point dense matrix (random unit vectors: its cost does not depend on them).
``python -m app.evaluate --json`` (the portal's *rag eval* check) gives hit@5, MRR and
faithfulness of the shipped documents on ``evaluation/eval.yaml`` in each mode.

(d) **Answer latency**: ``POST /api/ask`` over HTTP with the extractive answerer on the
shipped documents, beside ``GET /healthz`` as the baseline.

Targets (issue 15): retrieval p50 under 10 ms in lexical mode and under 30 ms with the
model, over 10,000 chunks; hit@5 at least 0.9 with the model (reported for lexical too).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

# Run as a script (`python benchmarks/rag.py`): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.aiops import machine
from benchmarks.rendering import render_defaults
from benchmarks.timing import percentile, timed
from portal.integrations.prometheus_local import free_port
from tests.templates.service_process import offline_env, status_of
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "rag-llm-service"
PROBE = Path(__file__).resolve().parent / "rag_probe.py"
SECTIONS_PER_DOCUMENT = 20
SECTION_CHARS = 700  # under rag.yaml's chunk_size (800): one chunk a section
VOCABULARY = 30_000
REPLACED = 0.2
TARGET_MS = {"lexical": 10.0, "model": 30.0}
TARGET_HIT_AT_5 = 0.9
HTTP_TIMEOUT = 900.0
_WORD = re.compile(r"[A-Za-z]{4,}")


def render_service(root: Path) -> Path:
    """Render the template with its default answers, as the portal does."""
    return render_defaults(
        TEMPLATE, root, {"name": "bench-rag", "owner": "sre", "description": "RAG benchmark"}
    )


def paragraphs(docs: Path) -> list[str]:
    """Return the prose paragraphs and list items of the shipped documents (no code, tables)."""
    found = []
    for path in sorted(docs.glob("*.md")):
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
        for block in re.split(r"\n\s*\n", text):
            flat = " ".join(block.split())
            if len(flat) >= 60 and not flat.startswith(("#", "|")):
                found.append(flat)
    return found


def generate_corpus(docs: Path, folder: Path, sections: int, seed: int) -> int:
    """Write ``sections`` one-chunk sections into markdown files; return the files written."""
    rng = random.Random(seed)
    pool = paragraphs(docs)
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    words = sorted(
        {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(VOCABULARY)}
    )
    rng.shuffle(words)
    weights = [1.0 / (rank + 1) for rank in range(len(words))]  # Zipf-like
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    for first in range(0, sections, SECTIONS_PER_DOCUMENT):
        lines = [f"# {' '.join(rng.choices(words, weights, k=3)).title()}"]
        for _ in range(min(SECTIONS_PER_DOCUMENT, sections - first)):
            text = " ".join(rng.sample(pool, 2))
            text = _WORD.sub(
                lambda m: rng.choices(words, weights)[0] if rng.random() < REPLACED else m[0], text
            )
            text = text[:SECTION_CHARS].rsplit(" ", 1)[0]
            heading = " ".join(rng.choices(words, weights, k=rng.randint(2, 4))).capitalize()
            lines += ["", f"## {heading}", "", text]
        (folder / f"runbook-{files:04d}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        files += 1
    return files


@contextmanager
def serving(service: Path, python: Path, data_dir: Path) -> Iterator[httpx.Client]:
    """Run the rendered app as its image does, on a port; yield a client of it."""
    port = free_port()
    command = [str(python), "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    env = offline_env(DATA_DIR=str(data_dir), LOG_LEVEL="WARNING", INGEST_ON_START="false")
    process = subprocess.Popen(command, cwd=service, env=env)
    try:
        deadline = time.monotonic() + 60
        while status_of(port, "/readyz") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the rendered app did not become ready")
            time.sleep(0.1)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=HTTP_TIMEOUT
        ) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=30)


def ok(response: httpx.Response) -> dict[str, Any]:
    """Return the JSON of a 200 answer (exit on anything else)."""
    if response.status_code != 200:
        raise SystemExit(f"{response.request.url.path}: {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def ingest(client: httpx.Client, path: Path | None = None) -> tuple[float, dict[str, Any]]:
    """Ingest a folder over HTTP; return the seconds taken and the answer."""
    started = time.perf_counter()
    body = ok(client.post("/api/ingest/folder", json={"path": str(path)} if path else {}))
    return time.perf_counter() - started, body


def ask_timings(client: httpx.Client, questions: list[str], runs: int) -> list[float]:
    """Time ``POST /api/ask`` over the questions in turn (one warm-up round)."""
    turn = iter(range(10**9))

    def ask() -> None:
        ok(client.post("/api/ask", json={"question": questions[next(turn) % len(questions)]}))

    return timed(ask, runs, warm_up=len(questions))


def probe(python: Path, service: Path, data_dir: Path, mode: str, **config: Any) -> dict[str, Any]:
    """Run ``rag_probe.py`` in ``python``'s venv on the index in ``data_dir``."""
    env = offline_env(DATA_DIR=str(data_dir), EMBEDDING_MODE=mode, HF_HUB_OFFLINE="1")
    payload = json.dumps({"render": str(service), **config})
    done = subprocess.run(
        [str(python), str(PROBE), payload],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not found:
        raise SystemExit(f"the {mode} probe failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(found[-1].removeprefix("RESULT "))
    return result


def evaluation(python: Path, service: Path, mode: str) -> dict[str, Any]:
    """Run the service's ``python -m app.evaluate --json`` (the rag eval check) in ``mode``."""
    env = offline_env(EMBEDDING_MODE=mode, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [str(python), "-m", "app.evaluate", "--json"],
        cwd=service,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"app.evaluate ({mode}) failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def ms(values: list[float]) -> str:
    """Format p50 / p95 in milliseconds."""
    return f"{statistics.median(values) * 1000:>9.2f}{percentile(values, 0.95) * 1000:>9.2f}"


def row(label: str, values: list[float]) -> None:
    """Print one timing row: label, count, p50 and p95."""
    print(f"{label:<66}{len(values):>5}{ms(values)}")


def main() -> None:
    """Run every part and print the tables and the targets."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="timed calls per measure")
    parser.add_argument("--sections", type=int, default=10_000, help="chunks of the corpus")
    parser.add_argument("--seed", type=int, default=20261206, help="corpus seed")
    parser.add_argument(
        "--model-sections", type=int, default=1_000, help="chunks embedded with the model"
    )
    parser.add_argument("--baseline-runs", type=int, default=3, help="query_points calls")
    parser.add_argument(
        "--model-python",
        type=Path,
        default=os.environ.get("RAG_MODEL_PYTHON") or None,
        help="python of a venv with the template's model extra (default $RAG_MODEL_PYTHON)",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    targets: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp:
        root = Path(tmp)
        service = render_service(root)
        python = lock_venv(service / RUNTIME_LOCK, TEMPLATE.name)
        questions = [
            q["question"]
            for q in yaml.safe_load((service / "evaluation" / "eval.yaml").read_text())["questions"]
        ]
        files = generate_corpus(
            service / "docs", root / "corpus-data" / "corpus", args.sections, args.seed
        )
        print(f"questions: {len(questions)} of evaluation/eval.yaml; corpus: {files} files")

        with serving(service, python, root / "docs-data") as client:
            first, body = ingest(client)
            again, unchanged = ingest(client)
            shipped = {"seconds": first, "chunks": body["chunks"], "again": again}
            shipped["documents"] = len(body["report"]["added"])
            assert len(unchanged["report"]["unchanged"]) == shipped["documents"]
            healthz = timed(lambda: ok(client.get("/healthz")), args.runs, warm_up=5)
            answers = ask_timings(client, questions, args.runs)
        with serving(service, python, root / "corpus-data") as client:
            corpus_seconds, body = ingest(client, root / "corpus-data" / "corpus")
            corpus_chunks = int(body["chunks"])
            corpus_answers = ask_timings(client, questions, args.runs)
        common = {"questions": questions, "runs": args.runs, "baseline_runs": args.baseline_runs}
        results = {"lexical": probe(python, service, root / "corpus-data", "lexical", **common)}
        scores = {"lexical": evaluation(python, service, "lexical")}
        if args.model_python:
            small = root / "model-corpus"
            generate_corpus(service / "docs", small, args.model_sections, args.seed)
            results["model"] = probe(
                args.model_python,
                service,
                root / "model-data",
                "model",
                corpus=str(small),
                **common,
            )
            scores["model"] = evaluation(args.model_python, service, "model")

    print()
    print("(a) ingestion of the shipped documents over HTTP (POST /api/ingest/folder)")
    print(
        f"    {shipped['documents']} documents, {shipped['chunks']} chunks: "
        f"{shipped['seconds']:.2f} s; again, nothing changed: {shipped['again']:.2f} s"
    )
    print(
        f"    corpus: {files} documents, {corpus_chunks:,} chunks: {corpus_seconds:.1f} s "
        f"({corpus_chunks / corpus_seconds:.0f} chunks/s)"
    )
    for mode, result in results.items():
        if "ingest_seconds" in result:
            print(
                f"    corpus, {mode} mode, in process: {result['chunks']:,} chunks in "
                f"{result['ingest_seconds']:.1f} s"
            )
    print()
    print(
        f"{'(b, c) retrieval over the corpus, and (d) answers':<66}{'n':>5}"
        f"{'p50 ms':>9}{'p95 ms':>9}"
    )
    for mode, result in results.items():
        print(
            f"  {mode}: {result['description']}, {result['chunks']:,} chunks, "
            f"{result['hits']:.1f} hits a question, matrix loaded in {result['open_seconds']:.1f} s"
        )
        row("    Retriever.retrieve (embed + in-process search)", result["retrieve"])
        row("      of which the question's embedding", result["embed"])
        row("      of which the search of the in-process matrix", result["search"])
        row("    baseline: qdrant-client embedded query_points, same points", result["baseline"])
        if "retrieve_one_thread" in result:
            threads = result["torch_threads"]
            repeat = f"    Retriever.retrieve, PyTorch on {threads} threads (its default)"
            row(repeat, result["retrieve_default_threads"])
            row(
                "    Retriever.retrieve, PyTorch on 1 thread (in turn)",
                result["retrieve_one_thread"],
            )
            row(
                "    search of a 10,000-point dense matrix (random unit vectors)",
                result["search_10k"],
            )
        p50 = statistics.median(result["retrieve"]) * 1000
        targets.append(
            (
                f"{mode}: retrieval p50 over {result['chunks']:,} chunks < "
                f"{TARGET_MS[mode]:g} ms ({p50:.2f})",
                p50 < TARGET_MS[mode],
            )
        )
    row(f"  POST /api/ask over HTTP, extractive, {corpus_chunks:,} chunks", corpus_answers)
    row(
        f"  (d) POST /api/ask over HTTP, extractive, shipped docs ({shipped['chunks']} chunks)",
        answers,
    )
    row("  GET /healthz (baseline)", healthz)
    print()
    print(
        f"{'evaluation/eval.yaml on the shipped docs (app.evaluate)':<58}"
        f"{'hit@5':>7}{'MRR':>7}{'faithful':>10}"
    )
    for figures in scores.values():
        print(
            f"  {figures['embedding']:<56}{figures['hit_at_5']:>7.3f}{figures['mrr']:>7.3f}"
            f"{figures['faithfulness']:>10.3f}"
        )
    if "model" in scores:
        hit = scores["model"]["hit_at_5"]
        targets.append((f"model: hit@5 >= {TARGET_HIT_AT_5} ({hit:.3f})", hit >= TARGET_HIT_AT_5))
    else:
        print("  (model mode skipped: pass --model-python)")
    print()
    for label, passed in targets:
        print(f"{label:<72} {'PASS' if passed else 'FAIL'}")


if __name__ == "__main__":
    main()
