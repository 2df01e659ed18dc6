"""What is specific to the rag-llm-service template's render: its questions (the LLM endpoint,
model, Qdrant server and embedding mode) and their validators, the answers in the rendered
settings and Deployment, the API keys as optional Secret references, the namespace labels
the llmops NetworkPolicies admit, and what the image ships: the documents, the evaluation
set (the same as llmops/rag's), the prompts and rag.yaml. The generated app, served as the
image runs it, is tested in test_rag_served_app.py and in Chromium in tests/test_browser_rag.py.

Everything every template provides (files, objects of every overlay, review checks, probes,
metrics, traces, the generated tests from the lock) is checked by test_contract.py."""

from __future__ import annotations

import filecmp
import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from portal.scaffold.answers import validate_answers
from portal.scaffold.registry.bundled import PublishedTemplate, discover
from portal.scaffold.registry.manifest import load_template
from tests.templates.rag_render import (
    DEFAULTS,
    TEMPLATE,
    published_template,
    render_rag,
    runtime_python,
)
from tests.templates.rendering import REPO, TEMPLATES_DIR, Rendered, built_overlays, by_kind, load
from tests.templates.service_process import offline_env

LLMOPS = REPO / "llmops"
CUSTOM: dict[str, object] = {
    **DEFAULTS,
    "name": "handbook-qa",
    "llm_base_url": "http://ollama.llm-serving.svc:11434/v1",
    "llm_model": "llama3.2:3b",
    "qdrant_url": "http://qdrant.vector-db.svc:6333",
    "embedding_mode": "model",
}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedTemplate]:
    with published_template(tmp_path_factory.mktemp("data")) as template:
        yield template


@pytest.fixture(scope="module")
def default_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_rag(published, DEFAULTS, tmp_path_factory.mktemp("gitops"))


@pytest.fixture(scope="module")
def custom_service(
    published: PublishedTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Rendered:
    return render_rag(published, CUSTOM, tmp_path_factory.mktemp("gitops"))


# --- the template and its questions ----------------------------------------------------------


def test_the_template_is_registered_with_its_questions() -> None:
    (info,) = [i for i in discover(TEMPLATES_DIR) if i.name == "rag-llm-service"]
    assert (info.title, info.owner, info.version) == ("RAG LLM service", "platform-team", "0.2.0")
    questions = {q.name: q for q in info.questions}
    defaults = {
        name: questions[name].default
        for name in ("llm_base_url", "llm_model", "qdrant_url", "embedding_mode")
    }
    assert defaults == {
        "llm_base_url": "",  # no LLM: the extractive answerer, labelled as such
        "llm_model": "Qwen/Qwen2.5-1.5B-Instruct",
        "qdrant_url": "",  # Qdrant's embedded mode
        "embedding_mode": "lexical",
    }
    _, errors = validate_answers(info.questions, {**DEFAULTS, "embedding_mode": "semantic"})
    assert errors["embedding_mode"].endswith("is not one of the choices: lexical, model")
    # A key is never an answer: answers are committed to the GitOps repository.
    assert not any(word in name for name in questions for word in ("key", "token", "secret"))


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"llm_base_url": "vllm.llm-serving.svc:8000/v1"}, "llm_base_url", "empty or an http(s)"),
        ({"llm_base_url": "http://vllm:8000/v1?key=x"}, "llm_base_url", "empty or an http(s)"),
        ({"llm_base_url": "ftp://vllm/v1"}, "llm_base_url", "empty or an http(s)"),
        ({"qdrant_url": "qdrant.vector-db.svc:6333"}, "qdrant_url", "empty or an http(s)"),
        ({"qdrant_url": "http://user@qdrant:6333"}, "qdrant_url", "empty or an http(s)"),
        ({"llm_model": "Qwen 2.5"}, "llm_model", "must be a model name"),
        ({"llm_model": "-model"}, "llm_model", "must be a model name"),
        ({"llm_model": "m" * 129}, "llm_model", "must be a model name"),
    ],
)
def test_bad_answers_get_a_message_on_their_field(
    answers: dict[str, object], field: str, message: str
) -> None:
    _, errors = validate_answers(load_template(TEMPLATE).questions, {**DEFAULTS, **answers})
    assert message in errors[field]


def test_good_answers_of_its_own_questions_are_accepted() -> None:
    answers, errors = validate_answers(load_template(TEMPLATE).questions, CUSTOM)
    assert errors == {}
    assert answers["llm_model"] == "llama3.2:3b" and answers["embedding_mode"] == "model"


# --- renders ---------------------------------------------------------------------------------


def _container(service: Rendered) -> dict[str, Any]:
    deployment = load(service.dest / "deploy" / "base" / "deployment.yaml")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _settings(service: Rendered) -> dict[str, Any]:
    """Read the render's settings as the service itself does, from its runtime lock."""
    script = "import dataclasses, json; from app.settings import Settings; "
    script += "print(json.dumps(dataclasses.asdict(Settings.from_env({})), default=str))"
    shown = subprocess.run(
        [str(runtime_python(service)), "-c", script],
        cwd=service.dest,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    settings: dict[str, Any] = json.loads(shown.stdout)
    return settings


@pytest.mark.integration
def test_custom_answers_reach_the_settings_and_the_deployment(custom_service: Rendered) -> None:
    settings = _settings(custom_service)
    assert settings["service_name"] == "handbook-qa"
    assert settings["llm_base_url"] == "http://ollama.llm-serving.svc:11434/v1"
    assert settings["llm_model"] == "llama3.2:3b"
    assert settings["qdrant_url"] == "http://qdrant.vector-db.svc:6333"
    assert settings["embedding_mode"] == "model"
    assert settings["llm_api_key"] == settings["qdrant_api_key"] == ""
    env = {item["name"]: item.get("value") for item in _container(custom_service)["env"]}
    assert env["LLM_BASE_URL"] == "http://ollama.llm-serving.svc:11434/v1"
    assert env["LLM_MODEL"] == "llama3.2:3b"
    assert env["QDRANT_URL"] == "http://qdrant.vector-db.svc:6333"
    assert (env["EMBEDDING_MODE"], env["DATA_DIR"]) == ("model", "/data")


@pytest.mark.integration
def test_the_default_answers_mean_no_llm_and_embedded_qdrant(default_service: Rendered) -> None:
    settings = _settings(default_service)
    assert (settings["llm_base_url"], settings["qdrant_url"]) == ("", "")
    assert settings["embedding_mode"] == "lexical"
    env = {item["name"]: item.get("value") for item in _container(default_service)["env"]}
    assert (env["LLM_BASE_URL"], env["QDRANT_URL"], env["EMBEDDING_MODE"]) == ("", "", "lexical")
    assert env["LLM_MODEL"] == "Qwen/Qwen2.5-1.5B-Instruct"


def test_the_api_keys_are_optional_secret_references_never_values(
    custom_service: Rendered,
) -> None:
    env = {item["name"]: item for item in _container(custom_service)["env"]}
    for variable, secret in (
        ("LLM_API_KEY", "handbook-qa-llm"),
        ("QDRANT_API_KEY", "handbook-qa-qdrant"),
    ):
        assert "value" not in env[variable]  # no secret in the GitOps repository
        assert env[variable]["valueFrom"]["secretKeyRef"] == {
            "name": secret,
            "key": "api-key",
            "optional": True,  # in-cluster vLLM and Qdrant behind NetworkPolicies need none
        }
    answers = (custom_service.dest / ".copier-answers.yml").read_text(encoding="utf-8")
    assert not re.search(r"key|token|secret", answers, re.IGNORECASE)


def _admitted_labels() -> list[dict[str, str]]:
    """The namespace labels the llmops NetworkPolicies admit (Qdrant, vLLM, Ollama)."""
    policies = [
        LLMOPS / "vector-db" / "networkpolicy.yaml",
        LLMOPS / "llm-serving" / "vllm" / "networkpolicy.yaml",
        LLMOPS / "llm-serving" / "ollama" / "networkpolicy.yaml",
    ]
    admitted = []
    for path in policies:
        selectors = [
            peer["namespaceSelector"]["matchLabels"]
            for rule in load(path)["spec"]["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" in peer
        ]
        clients = [s for s in selectors if "kubernetes.io/metadata.name" not in s]
        assert clients, f"{path} admits no client namespace"
        admitted.extend(clients)
    return admitted


@pytest.mark.integration
def test_the_namespace_carries_the_labels_qdrant_and_the_llm_servers_admit(
    default_service: Rendered,
) -> None:
    admitted = _admitted_labels()
    assert {"platform.example/rag-client": "true"} in admitted
    assert {"platform.example/llm-client": "true"} in admitted
    for environment, objects in built_overlays(default_service.dest).items():
        labels = by_kind(objects)["Namespace"]["metadata"]["labels"]
        for selector in admitted:
            assert selector.items() <= labels.items(), (environment, selector, labels)


# --- what the image ships --------------------------------------------------------------------


def test_the_service_ships_its_documents_evaluation_set_prompts_and_rag_yaml(
    default_service: Rendered,
) -> None:
    dest = default_service.dest
    docs = sorted(path.name for path in (dest / "docs").iterdir())
    assert docs == sorted(path.name for path in (LLMOPS / "rag" / "docs").iterdir())
    assert len(docs) >= 10
    _, mismatch, errors = filecmp.cmpfiles(
        dest / "docs", LLMOPS / "rag" / "docs", docs, shallow=False
    )
    assert (mismatch, errors) == ([], [])
    evaluation = dest / "evaluation" / "eval.yaml"
    assert evaluation.read_bytes() == (LLMOPS / "rag" / "eval.yaml").read_bytes()
    questions = load(evaluation)["questions"]
    assert len(questions) >= 10
    # Every answer names a shipped document holding its phrase: the gate measures retrieval.
    for question in questions:
        for answer in question["answers"]:
            text = " ".join((dest / "docs" / answer["source"]).read_text().lower().split())
            assert answer["contains"].lower() in text, (question["question"], answer)
    rag = load(dest / "rag.yaml")
    assert rag["evaluation"]["set"] == "evaluation/eval.yaml"
    labels = load(dest / "prompts" / "labels.yaml")
    version = labels[rag["prompt"]["name"]][rag["prompt"]["label"]]
    prompt = dest / "prompts" / rag["prompt"]["name"] / f"v{version}.yaml"
    assert prompt.is_file(), prompt


def test_the_image_copies_what_the_service_reads_and_says_how_to_add_the_model(
    default_service: Rendered,
) -> None:
    dockerfile = (default_service.dest / "Dockerfile").read_text(encoding="utf-8")
    runtime = dockerfile.split("\nFROM ")[-1]  # the final stage: what runs
    for copied in ("rag.yaml", "docs", "prompts"):
        assert re.search(rf"^COPY {copied}\b", runtime, re.MULTILINE), copied
    assert "USER 10001:10001" in runtime and "DATA_DIR=/data" in runtime
    # The model extra (PyTorch, ~1 GB) is not in the image unless the team adds it.
    readme = (default_service.dest / "README.md").read_text(encoding="utf-8")
    for name, text in (("Dockerfile", dockerfile), ("README.md", readme)):
        flat = " ".join(text.split())
        assert re.search(r"\[model\]|`model` extra", flat), f"{name} does not name the extra"
        assert "EMBEDDING_MODE" in flat, name
