"""The ``rag eval`` review check: a RAG service's quality figures on the change against main.

A service folder holding ``rag.yaml`` (the RAG template's services) carries its own
evaluation: ``python -m app.evaluate --json`` measures hit@5, MRR and citation faithfulness
on ``evaluation/eval.yaml`` (:mod:`portal.integrations.rag_eval` runs it). When a change
touches what those figures depend on (``rag.yaml``, ``prompts/``, ``docs/``,
``evaluation/`` or the evaluation set ``rag.yaml`` names), or the service is new, the
change's folder is evaluated, and main's too when main has the service. A figure that
drops by more than ``evaluation.tolerance`` fails the check, naming both figures:
``hit@5 0.95 -> 0.82 (-0.13, tolerance 0.02)``.

The tolerance is the stricter of main's and the change's, so a change cannot loosen the
gate it is judged by. The code evaluating both sides is main's ``app/`` (reviewed and
merged): a change's own Python never runs in the portal, only its documents, prompts and
settings are evaluated. A new service (not on main: a template's render) runs its own. An
evaluator that cannot run, refuses the files or prints no report makes the check an
error, never a pass.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from portal.integrations.kubernetes import Finding, Severity
from portal.integrations.rag_eval import RagEvalError, RagEvaluator, RagFigures
from portal.yaml_source import YamlStream

RAG_FILE = "rag.yaml"
RAG_INPUTS = (RAG_FILE, "prompts", "docs", "evaluation")
FIGURES = (("hit@5", "hit_at_5"), ("MRR", "mrr"), ("faithfulness", "faithfulness"))
# Figures are shares of a few dozen questions; a float rounding error is no drop.
EPSILON = 1e-9
RULE = "rag-eval"


@dataclass(frozen=True)
class RagSettings:
    """What the portal reads of ``rag.yaml``; ``problems`` are ``(line, message)`` pairs."""

    tolerance: float | None = None
    eval_set: str | None = None
    prompt_name: str | None = None
    prompt_label: str | None = None
    prompt_label_line: int = 1
    problems: tuple[tuple[int, str], ...] = ()


@dataclass
class RagEvalOutcome:
    """The check's summary and findings, and whether it could vouch for its result."""

    summary: str
    findings: list[Finding] = field(default_factory=list)
    could_not_run: bool = False


def _mapping(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def read_rag_settings(text: str) -> RagSettings:
    """Read ``evaluation.tolerance``, ``evaluation.set`` and ``prompt`` of a ``rag.yaml``.

    The tolerance must be a number from 0 to 1 and the set a relative path inside the
    service folder; the service's own ``rag_config`` checks the rest of the file.
    """
    stream = YamlStream(text)
    documents = list(stream)
    if stream.problem is not None:
        return RagSettings(problems=((stream.problem.line or 1, stream.problem.reason),))
    if not documents or not isinstance(documents[0].data, dict):
        return RagSettings(problems=((1, "must be a mapping (chunking, retrieval, ...)"),))
    document = documents[0]
    problems: list[tuple[int, str]] = []
    evaluation = _mapping(document.data, "evaluation")
    tolerance = evaluation.get("tolerance")
    where = document.line_of(["evaluation", "tolerance"])
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float):
        problems.append((where, f"evaluation.tolerance: {tolerance!r} is not a number"))
        tolerance = None
    elif not math.isfinite(tolerance) or not 0 <= tolerance <= 1:
        problems.append((where, f"evaluation.tolerance: {tolerance} is not within 0..1"))
        tolerance = None
    eval_set = evaluation.get("set")
    where = document.line_of(["evaluation", "set"])
    path = PurePosixPath(eval_set) if isinstance(eval_set, str) and eval_set.strip() else None
    if path is None or path.is_absolute() or ".." in path.parts or "\\" in str(eval_set):
        message = f"evaluation.set: {eval_set!r} is not a path inside the service folder"
        problems.append((where, message))
        eval_set = None
    prompt = _mapping(document.data, "prompt")
    name, label = prompt.get("name"), prompt.get("label")
    return RagSettings(
        tolerance=None if tolerance is None else float(tolerance),
        eval_set=str(path) if eval_set is not None else None,
        prompt_name=name if isinstance(name, str) else None,
        prompt_label=label if isinstance(label, str) else None,
        prompt_label_line=document.line_of(["prompt", "label"]),
        problems=tuple(problems),
    )


def rag_settings_of(service_dir: Path) -> RagSettings:
    """Read the folder's ``rag.yaml`` (a file that cannot be read is a problem at line 1)."""
    try:
        text = (service_dir / RAG_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return RagSettings(problems=((1, f"cannot be read: {error}"),))
    return read_rag_settings(text)


def _fingerprints(service_dir: Path, paths: set[str]) -> dict[str, str]:
    """Return ``{relative path: sha256}`` of the regular files under ``paths``.

    Symbolic links are left out, as the evaluator's copy leaves them out.
    """
    found: dict[str, str] = {}
    for name in sorted(paths):
        top = service_dir / name
        if top.is_symlink():
            continue
        if top.is_file():
            found[name] = hashlib.sha256(top.read_bytes()).hexdigest()
            continue
        for folder, dirs, files in os.walk(top, followlinks=False):
            dirs[:] = [entry for entry in dirs if not (Path(folder) / entry).is_symlink()]
            for entry in files:
                path = Path(folder) / entry
                if path.is_file() and not path.is_symlink():
                    relative = path.relative_to(service_dir).as_posix()
                    found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def touches_rag_inputs(service_dir: Path, main_dir: Path, extra: set[str]) -> bool:
    """Tell whether the change's folder differs from main's in anything the figures read."""
    paths = set(RAG_INPUTS) | extra
    return _fingerprints(service_dir, paths) != _fingerprints(main_dir, paths)


def _decimals(*values: float) -> int:
    """Use two decimals unless that would hide a difference (a drop of 0.025 is not -0.03)."""
    for places in (2, 3):
        if all(abs(value - round(value, places)) < EPSILON for value in values):
            return places
    return 4


def _figure_text(label: str, old: float, new: float, tolerance: float) -> str:
    delta = new - old
    places = _decimals(old, new, delta, tolerance)
    sign = "-" if delta < -EPSILON else "+"
    return (
        f"{label} {old:.{places}f} -> {new:.{places}f} "
        f"({sign}{abs(delta):.{places}f}, tolerance {tolerance:.{places}f})"
    )


def _described(figures: RagFigures) -> str:
    return f"{figures.questions} questions, {figures.chunks} chunks, {figures.embedding}"


def compare_figures(
    main: RagFigures, change: RagFigures, tolerance: float, eval_set: str
) -> RagEvalOutcome:
    """Fail each figure that drops by more than ``tolerance``; the summary gives both figures."""
    drops: list[str] = []
    within: list[str] = []
    findings: list[Finding] = []
    for label, attribute in FIGURES:
        old, new = getattr(main, attribute), getattr(change, attribute)
        text = _figure_text(label, old, new, tolerance)
        if old - new > tolerance + EPSILON:
            drops.append(text)
            findings.append(
                Finding(
                    severity=Severity.ERROR,
                    rule=RULE,
                    object=eval_set,
                    source=RAG_FILE,
                    path="evaluation.tolerance",
                    message=f"{text}: drops by more than the tolerance",
                    reason="A change to the documents, prompts or retrieval settings may not "
                    "make the service answer its evaluation set worse than main does.",
                )
            )
        else:
            within.append(text)
    questions = f"on {change.questions} questions (main: {main.questions})"
    if drops:
        rest = f"; within: {', '.join(within)}" if within else ""
        summary = f"dropped beyond the tolerance: {', '.join(drops)}{rest} {questions}"
    else:
        summary = f"within the tolerance of main: {', '.join(within)} {questions}"
    return RagEvalOutcome(f"{summary}; {_described(change)}", findings)


def _file_finding(message: str, path: str = "") -> Finding:
    return Finding(
        severity=Severity.ERROR, rule=RULE, object=RAG_FILE, source=RAG_FILE, path=path,
        message=message,
    )  # fmt: skip


def _error(message: str, problems: list[str]) -> RagEvalOutcome:
    findings = [_file_finding(problem) for problem in problems]
    return RagEvalOutcome(message, findings, could_not_run=True)


def _settings_failed(settings: RagSettings) -> RagEvalOutcome:
    findings = [
        _file_finding(f"{RAG_FILE} line {line}: {message}", f"line {line}")
        for line, message in settings.problems
    ]
    first = findings[0].message if findings else f"{RAG_FILE}: no evaluation settings"
    return RagEvalOutcome(f"{RAG_FILE} cannot be evaluated: {first}", findings)


def rag_eval_outcome(
    service_dir: Path, main_dir: Path | None, evaluator: RagEvaluator
) -> RagEvalOutcome:
    """Run the check on a service folder holding ``rag.yaml``.

    ``main_dir`` is the service as main has it at the change's base (None: main does not
    have it, a new service). Unchanged inputs skip the evaluation (passed, saying so).
    """
    settings = rag_settings_of(service_dir)
    if settings.problems or settings.tolerance is None or settings.eval_set is None:
        return _settings_failed(settings)
    main_settings = None
    if main_dir is not None and (main_dir / RAG_FILE).is_file():
        main_settings = rag_settings_of(main_dir)
    extra = {settings.eval_set}
    if main_settings is not None and main_settings.eval_set:
        extra.add(main_settings.eval_set)
    if main_dir is not None and not touches_rag_inputs(service_dir, main_dir, extra):
        inputs = ", ".join(f"{name}/" if name != RAG_FILE else name for name in RAG_INPUTS)
        return RagEvalOutcome(f"not run: the change touches none of {inputs}")
    code_dir = main_dir if main_dir is not None else service_dir
    try:
        change = evaluator.evaluate(service_dir, code_dir)
    except RagEvalError as error:
        return _error(f"the evaluator could not measure the change: {error}", error.problems)
    if main_dir is None or main_settings is None:
        figures = ", ".join(
            f"{label} {getattr(change, attribute):.2f}" for label, attribute in FIGURES
        )
        why = "a new service" if main_dir is None else f"main has no {RAG_FILE}"
        return RagEvalOutcome(f"{figures} ({_described(change)}); nothing to compare with: {why}")
    try:
        main = evaluator.evaluate(main_dir, code_dir)
    except RagEvalError as error:
        return _error(f"the evaluator could not measure main: {error}", error.problems)
    tolerance = settings.tolerance
    if main_settings.tolerance is not None:
        tolerance = min(tolerance, main_settings.tolerance)
    return compare_figures(main, change, tolerance, settings.eval_set)
