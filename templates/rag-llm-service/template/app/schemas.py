"""Request bodies and parameters (with their limits), and the JSON of an answer."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from .extractive import Answer

MAX_QUESTION_CHARS = 2_000
MAX_LABEL_CHARS = 40
MAX_UPLOAD_FILES = 50


def check_question(value: str) -> str:
    """Return the question without surrounding spaces; refuse an empty or too long one."""
    question = value.strip()
    if not question:
        raise ValueError("ask a question: it is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"at most {MAX_QUESTION_CHARS:,} characters, got {len(question):,}: "
            "ask about one thing at a time"
        )
    return question


class AskParams(BaseModel):
    """A question and, optionally, the prompt label to answer it with (rag.yaml's by default)."""

    question: str = Field(description="The question, 1 to 2,000 characters.")
    prompt_label: str | None = Field(
        default=None,
        max_length=MAX_LABEL_CHARS,
        description="A label of prompts/labels.yaml, e.g. staging.",
    )

    @field_validator("question")
    @classmethod
    def _question(cls, value: str) -> str:
        try:
            return check_question(value)
        except ValueError as error:  # pydantic would prefix "Value error, "
            raise PydanticCustomError("question", str(error)) from None

    @field_validator("prompt_label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


class AskRequest(AskParams):
    """The body of ``POST /api/ask``; a field it does not know is refused, named."""

    model_config = ConfigDict(extra="forbid")


class IngestFolderRequest(BaseModel):
    """The body of ``POST /api/ingest/folder``: a folder under the docs or data folder."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(
        default=None,
        max_length=1_000,
        description="The folder to ingest; default the docs folder (DOCS_DIR).",
    )


def answer_json(answer: Answer) -> dict[str, Any]:
    """Return an answer as the API gives it."""
    return {
        "answer": answer.text,
        "mode": answer.mode,
        "citations": [dataclasses.asdict(citation) for citation in answer.citations],
        "prompt": {
            "name": answer.prompt_name,
            "version": answer.prompt_version,
            "label": answer.prompt_label,
        },
        "usage": dict(answer.usage),
        "embedding": answer.embedding,
        "model": answer.model,
    }


def plain(value: Any) -> Any:
    """Turn a report or record (dataclasses, paths, times) into JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value
