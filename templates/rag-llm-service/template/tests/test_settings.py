"""Settings from the environment: the answers by default, a bad value named, keys hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.settings import Settings, SettingsError

from .conftest import SERVICE_ROOT


def test_the_environment_overrides_the_answers() -> None:
    """Every variable the Deployment sets is read."""
    settings = Settings.from_env(
        {
            "LLM_BASE_URL": "http://vllm.llm-serving.svc:8000/v1/",
            "LLM_MODEL": "llama3.2:3b",
            "LLM_TIMEOUT_SECONDS": "12.5",
            "QDRANT_URL": "http://qdrant.vector-db.svc:6333",
            "EMBEDDING_MODE": "Model",
            "DATA_DIR": "/data",
            "DOCS_DIR": "/srv/docs",
            "PROMPTS_DIR": "/srv/prompts",
            "RAG_FILE": "/srv/rag.yaml",
            "MAX_UPLOAD_BYTES": "5000",
            "INGEST_ON_START": "false",
        }
    )
    assert settings.llm_base_url == "http://vllm.llm-serving.svc:8000/v1"  # no trailing slash
    assert (settings.llm_model, settings.llm_timeout_seconds) == ("llama3.2:3b", 12.5)
    assert settings.qdrant_url == "http://qdrant.vector-db.svc:6333"
    assert settings.embedding_mode == "model"
    assert (settings.data_dir, settings.docs_dir) == (Path("/data"), Path("/srv/docs"))
    assert (settings.prompts_dir, settings.rag_file) == (
        Path("/srv/prompts"),
        Path("/srv/rag.yaml"),
    )
    assert settings.max_upload_bytes == 5000 and settings.ingest_on_start is False
    assert Settings.from_env({}) == Settings()


def test_the_defaults_are_the_generated_answers() -> None:
    """The LLM, Qdrant and embedding answered at generation; files beside the app."""
    answers = yaml.safe_load((SERVICE_ROOT / ".copier-answers.yml").read_text(encoding="utf-8"))
    settings = Settings()
    assert (settings.llm_base_url, settings.llm_model) == (
        answers["llm_base_url"],
        answers["llm_model"],
    )
    assert (settings.qdrant_url, settings.embedding_mode) == (
        answers["qdrant_url"],
        answers["embedding_mode"],
    )
    assert settings.service_name == answers["name"]
    assert (str(settings.docs_dir), str(settings.prompts_dir), str(settings.rag_file)) == (
        "docs",
        "prompts",
        "rag.yaml",
    )


def test_the_api_keys_are_read_but_never_shown() -> None:
    """They come from Secrets the Deployment references; logs and reprs never carry them."""
    settings = Settings.from_env({"LLM_API_KEY": "sk-llm-secret", "QDRANT_API_KEY": "qd-secret"})
    assert (settings.llm_api_key, settings.qdrant_api_key) == ("sk-llm-secret", "qd-secret")
    assert "sk-llm-secret" not in repr(settings) and "qd-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LLM_BASE_URL": "vllm:8000"}, "LLM_BASE_URL must be empty or an http(s) URL"),
        ({"QDRANT_URL": "ftp://qdrant"}, "QDRANT_URL must be empty or an http(s) URL"),
        ({"EMBEDDING_MODE": "bert"}, "EMBEDDING_MODE must be one of lexical, model"),
        ({"LLM_TIMEOUT_SECONDS": "soon"}, "LLM_TIMEOUT_SECONDS must be a number"),
        ({"LLM_TIMEOUT_SECONDS": "0"}, "LLM_TIMEOUT_SECONDS must be between"),
        ({"MAX_UPLOAD_BYTES": "10"}, "MAX_UPLOAD_BYTES must be between"),
        ({"INGEST_ON_START": "maybe"}, "INGEST_ON_START must be true or false"),
    ],
)
def test_a_bad_value_stops_the_service_naming_the_variable(
    env: dict[str, str], message: str
) -> None:
    """The service does not start on a value it cannot use."""
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(env)
