"""Shared fixtures: settings on a temporary data folder, retrieval settings, small documents.

The documents here are the tests' own (a few runbooks written for them), not the ones the
service ships in ``docs/``, so a change to those never breaks a unit test. The index is
Qdrant's real embedded mode in a temporary folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.embeddings import LexicalEmbedder
from app.llm import ChatModelFactory
from app.rag_config import RagConfig
from app.settings import Settings
from app.vectorstore import ChunkStore

SERVICE_ROOT = Path(__file__).resolve().parents[1]

DOCS = {
    "rollback.md": """# Rollback runbook

Use this runbook when a release breaks the availability SLO.

## With Flux

Suspend the kustomization with `flux suspend kustomization web`, revert the release
commit in Git, then resume reconciliation with `flux resume kustomization web`.

## With kubectl

Undo the last rollout with `kubectl rollout undo deployment/web` and watch the pods.
""",
    "alerts.html": """<!doctype html>
<html><head><title>Alerting</title><style>h1 { color: red }</style></head>
<body>
<h1>Alerting</h1>
<p>When the <b>error budget</b> burns faster than 14 times the allowed rate, page the
on-call engineer.</p>
<h2>Silences</h2>
<p>Create a silence with <code>amtool silence add</code> during planned maintenance.</p>
<script>var ignored = "never indexed";</script>
</body></html>
""",
    "notes/oncall.txt": """On-call handover happens every Monday at ten.
The outgoing engineer writes a handover note listing open incidents and noisy alerts.
""",
    "certificates.md": """# Certificates

cert-manager renews TLS certificates thirty days before they expire. When a renewal
fails, check the ClusterIssuer events and the ACME challenge.
""",
}


def write_docs(folder: Path, docs: dict[str, str] | None = None) -> Path:
    """Write documents (path -> text) under ``folder``; return it."""
    for name, text in (DOCS if docs is None else docs).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def rag_settings(tmp_path: Path) -> Settings:
    """Return settings with an embedded index in a temporary folder, lexical mode, no LLM."""
    return dataclasses.replace(
        Settings(),
        data_dir=tmp_path / "data",
        docs_dir=tmp_path / "docs",
        qdrant_url="",
        embedding_mode="lexical",
        llm_base_url="",
    )


@pytest.fixture
def rag_config() -> RagConfig:
    """Return retrieval settings sized for the small test documents."""
    return RagConfig(
        chunk_size=300,
        chunk_overlap=40,
        top_k=3,
        min_score={"lexical": 0.05, "model": 0.2},
        prompt_name="qa",
        prompt_label="production",
        eval_set=Path("evaluation/eval.yaml"),
        tolerance=0.02,
    )


@pytest.fixture
def docs_folder(tmp_path: Path) -> Path:
    """Write the test documents into a folder (markdown, HTML, text in a subfolder)."""
    return write_docs(tmp_path / "docs")


@pytest.fixture
def lexical_store(rag_settings: Settings) -> Iterator[ChunkStore]:
    """Open an empty lexical index in the temporary data folder; close it after the test."""
    store = ChunkStore(rag_settings, LexicalEmbedder())
    yield store
    store.close()


# The started service: the app on the test documents, with its own rag.yaml and prompts.
# (Imports are inside the fixtures so this part stands on its own.)

TEST_RAG_YAML = """chunking:
  chunk_size: 300
  chunk_overlap: 40
retrieval:
  top_k: 3
  min_score:
    lexical: 0.05
    model: 0.2
prompt:
  name: qa
  label: production
evaluation:
  set: evaluation/eval.yaml
  tolerance: 0.02
"""
TEST_PROMPTS = {
    "qa/v1.yaml": """template: |
  Answer from the passages and cite them like [1].
  Passages:
  {context}
  Question: {question}
variables: [context, question]
model_parameters:
  temperature: 0.1
  max_tokens: 256
note: The first version.
""",
    "qa/v2.yaml": """template: "Q: {question}\\nUse only:\\n{context}"
variables: [question, context]
model_parameters:
  temperature: 0.0
note: Shorter, question first.
""",
    "labels.yaml": "qa:\n  production: 1\n  staging: 2\n",
}


@pytest.fixture
def service_settings(rag_settings: Settings, docs_folder: Path, tmp_path: Path) -> Settings:
    """Return settings of a service on the test documents, its rag.yaml and prompts in tmp."""
    prompts = write_docs(tmp_path / "prompts", TEST_PROMPTS)
    rag_file = tmp_path / "rag.yaml"
    rag_file.write_text(TEST_RAG_YAML, encoding="utf-8")
    return dataclasses.replace(
        rag_settings,
        service_name="assistant-test",
        docs_dir=docs_folder,
        prompts_dir=prompts,
        rag_file=rag_file,
        llm_model="test-model",
        max_upload_bytes=20_000,
    )


def wait_ready(client: TestClient, seconds: float = 20.0) -> dict[str, object]:
    """Poll ``/readyz`` until the documents are ingested; return its body."""
    deadline = time.monotonic() + seconds
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            body: dict[str, object] = response.json()
            return body
        time.sleep(0.02)


@contextlib.contextmanager
def started(
    settings: Settings, chat_models: ChatModelFactory | None = None
) -> Iterator[TestClient]:
    """Start the app (``chat_models``: a factory of chat models, e.g. fake ones) and wait."""
    from app.main import create_app

    with TestClient(create_app(settings, chat_models=chat_models)) as client:
        wait_ready(client)
        yield client


@pytest.fixture
def client(service_settings: Settings) -> Iterator[TestClient]:
    """Yield a client of the started service answering without an LLM (extractive)."""
    with started(service_settings) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Collect the process's finished spans (one exporter for the whole run)."""
    from app.telemetry import configure_tracing

    exporter = InMemorySpanExporter()
    configure_tracing("assistant-test").add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """Yield the exporter, emptied before and after the test."""
    span_exporter.clear()
    yield span_exporter
    span_exporter.clear()
