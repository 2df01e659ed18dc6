"""The runbooks and evaluation set of llmops/rag/, and the copies the RAG template ships.

The template's own quality gate evaluates retrieval on ``evaluation/eval.yaml`` over
``docs/``; a phrase that is not in its source file could never be found, and a copy that
drifted from llmops/rag/ would evaluate documents nobody reviews here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.review.local_paths import find_local_paths

REPO = Path(__file__).resolve().parents[2]
RAG = REPO / "llmops" / "rag"
DOCS = RAG / "docs"
EVAL_SET = RAG / "eval.yaml"
TEMPLATE = REPO / "templates" / "rag-llm-service" / "template"
HEADING = re.compile(r"^(#{1,3}) \S", re.MULTILINE)


def _questions() -> list[dict[str, Any]]:
    data = yaml.safe_load(EVAL_SET.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and data.get("version") == 1, "eval.yaml: version must be 1"
    questions = data["questions"]
    assert isinstance(questions, list)
    return questions


def _doc_names() -> list[str]:
    return sorted(path.name for path in DOCS.glob("*.md"))


def test_the_template_ships_byte_identical_copies() -> None:
    shipped = sorted(path.name for path in (TEMPLATE / "docs").iterdir())
    assert shipped == _doc_names(), "template/docs/ must hold exactly llmops/rag/docs/*.md"
    for name in shipped:
        original = (DOCS / name).read_bytes()
        assert (TEMPLATE / "docs" / name).read_bytes() == original, f"docs/{name} differs"
    copy = TEMPLATE / "evaluation" / "eval.yaml"
    assert copy.read_bytes() == EVAL_SET.read_bytes(), "evaluation/eval.yaml differs"


def test_every_phrase_occurs_in_its_source_file() -> None:
    missing: list[str] = []
    for number, question in enumerate(_questions(), start=1):
        assert question["answers"], f"question {number} has no answers"
        assert 1 <= len(question["answers"]) <= 2, f"question {number}: 1 or 2 answers"
        for answer in question["answers"]:
            source = DOCS / answer["source"]
            assert source.parent == DOCS and source.is_file(), f"no such doc: {answer['source']}"
            text = source.read_text(encoding="utf-8").casefold()
            if answer["contains"].casefold() not in text:
                missing.append(f"question {number}: {answer['contains']!r} not in {source.name}")
    assert not missing, "\n".join(missing)


def test_the_set_has_its_size_and_no_duplicate_question() -> None:
    questions = [item["question"] for item in _questions()]
    assert 40 <= len(questions) <= 60
    assert len(set(map(str.casefold, questions))) == len(questions)
    # Every runbook is asked about, so a document dropped from retrieval shows in the figures.
    asked = {answer["source"] for item in _questions() for answer in item["answers"]}
    assert asked == set(_doc_names())


@pytest.mark.parametrize("name", _doc_names())
def test_each_runbook_has_headings_and_a_bounded_length(name: str) -> None:
    text = (DOCS / name).read_text(encoding="utf-8")
    levels = {len(match.group(1)) for match in HEADING.finditer(text)}
    assert 1 in levels and 2 in levels, f"{name}: needs a # title and ## sections"
    assert 40 <= len(text.splitlines()) <= 120, f"{name}: 40 to 120 lines"


def test_no_runbook_trips_the_local_path_check(tmp_path: Path) -> None:
    # The docs ship in every generated service, whose review runs this check.
    for path in DOCS.glob("*.md"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    findings, read = find_local_paths(tmp_path)
    assert read == len(_doc_names())
    assert not findings, [finding.message for finding in findings]
