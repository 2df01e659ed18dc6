"""The evaluation set's reader: questions and the passages that answer them, checked.

Every problem is reported at once, each as ``eval.yaml line N: field: why`` (the format
is described in :mod:`app.evaluate`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from .rag_config import compose_file, line_of, mapping, scalar


class EvalSetError(ValueError):
    """The evaluation set cannot be used; ``problems`` lists every reason with its line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class ExpectedAnswer:
    """A passage that answers a question: its document and a phrase it contains."""

    source: str
    contains: str
    line: int = 0


@dataclasses.dataclass(frozen=True)
class EvalQuestion:
    """A question of the set and the passages that answer it."""

    question: str
    answers: tuple[ExpectedAnswer, ...]
    line: int = 0


def load_eval_set(path: Path) -> list[EvalQuestion]:
    """Read an evaluation set; raise :class:`EvalSetError` listing every problem."""
    file = path.name
    root, problems = compose_file(path)
    if root is None:
        raise EvalSetError(problems or [f"{file}: empty"])
    top = mapping(root, "", problems, file)
    for name in top.keys() - {"version", "questions"}:
        problems.append(f"{file} line {line_of(top[name][0])}: {name}: unknown field")
    if "version" not in top or scalar(top["version"][1]) != 1:
        where = line_of(top["version"][1]) if "version" in top else line_of(root)
        problems.append(f"{file} line {where}: version: must be 1")
    listed = top.get("questions", (root, root))[1]
    if "questions" not in top or not isinstance(listed, yaml.SequenceNode) or not listed.value:
        problems.append(f"{file} line {line_of(listed)}: questions: must be a non-empty list")
        raise EvalSetError(problems)
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for index, node in enumerate(listed.value):
        question = _question(node, f"questions[{index}]", problems, file)
        if question is None:
            continue
        if question.question in seen:
            problems.append(f"{file} line {question.line}: questions[{index}]: asked twice")
        seen.add(question.question)
        questions.append(question)
    if problems:
        raise EvalSetError(problems)
    return questions


def _question(node: Any, where: str, problems: list[str], file: str) -> EvalQuestion | None:
    before = len(problems)
    entries = mapping(node, f"{where}.", problems, file)
    if not isinstance(node, yaml.MappingNode):
        return None
    for name in entries.keys() - {"question", "answers"}:
        problems.append(f"{file} line {line_of(entries[name][0])}: {where}.{name}: unknown field")
    text = _text(entries, "question", f"{where}.", node, problems, file)
    listed = entries.get("answers", (node, node))[1]
    expected: list[ExpectedAnswer] = []
    if "answers" not in entries or not isinstance(listed, yaml.SequenceNode) or not listed.value:
        problems.append(f"{file} line {line_of(listed)}: {where}.answers: must be a non-empty list")
    else:
        for index, item in enumerate(listed.value):
            at = f"{where}.answers[{index}]."
            fields = mapping(item, at, problems, file)
            if not isinstance(item, yaml.MappingNode):
                continue
            for name in fields.keys() - {"source", "contains"}:
                problems.append(
                    f"{file} line {line_of(fields[name][0])}: {at}{name}: unknown field"
                )
            source = _text(fields, "source", at, item, problems, file)
            contains = _text(fields, "contains", at, item, problems, file)
            if source and (source.startswith("/") or ".." in source.split("/")):
                problems.append(
                    f"{file} line {line_of(item)}: {at}source: must be relative to docs"
                )
            expected.append(ExpectedAnswer(source, contains, line_of(item)))
    if len(problems) > before:
        return None
    return EvalQuestion(question=text, answers=tuple(expected), line=line_of(node))


def _text(
    entries: dict[str, Any], name: str, at: str, node: Any, problems: list[str], file: str
) -> str:
    if name not in entries:
        problems.append(f"{file} line {line_of(node)}: {at}{name}: missing")
        return ""
    value = scalar(entries[name][1])
    if not isinstance(value, str) or not value.strip():
        problems.append(
            f"{file} line {line_of(entries[name][1])}: {at}{name}: must be non-empty text, "
            f"got {value!r}"
        )
        return ""
    return value.strip()
