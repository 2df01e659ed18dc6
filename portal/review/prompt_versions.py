"""The ``prompts`` review check: prompt versions are immutable, labels point at real versions.

For a service with a ``prompts/`` folder (the RAG template's layout, read by
:mod:`portal.models.prompt_files`): a change may add versions and move labels, never edit
or delete a version file main has (answers record the prompt version they used, so a
version must always mean the same text: "make v<N+1>.yaml and move the label"). Every
version file must hold ``template``, ``variables`` (exactly the template's placeholders),
``model_parameters`` and ``note``; ``labels.yaml`` must parse and point only at existing
versions; the label ``rag.yaml`` serves by default must exist. Each finding names the file
and the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from portal.integrations.kubernetes import Finding, Severity
from portal.models.prompt_files import (
    LABELS_FILE,
    PROMPTS_DIR,
    VERSION_FILE,
    PromptProblem,
    PromptSet,
    read_prompt_folder,
    read_prompt_set,
)
from portal.review.rag_eval import RAG_FILE, rag_settings_of

RULE_IMMUTABLE = "prompt-immutable"
RULE_FILE = "prompt-file"
REASON_IMMUTABLE = (
    "Answers record the prompt name and version they used: a version that changes after "
    "it was merged makes those records lie. Add a version and move the label instead."
)
REASON_FILE = "The service loads every prompt version and labels.yaml when it starts."


def _first_different_line(old: bytes, new: bytes) -> int:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (before, after) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if before != after:
            return number
    return min(len(old_lines), len(new_lines)) + 1


def _next_version(name: str, *trees: dict[str, bytes]) -> int:
    numbers = [
        int(match["version"])
        for tree in trees
        for path in tree
        if (match := VERSION_FILE.match(path)) and match["name"] == name
    ]
    return max(numbers, default=0) + 1


def immutability_problems(change: dict[str, bytes], main: dict[str, bytes]) -> list[PromptProblem]:
    """Return a problem for every version file of main that the change edits or deletes."""
    problems = []
    for path, old in sorted(main.items()):
        match = VERSION_FILE.match(path)
        if match is None:
            continue
        name = match["name"]
        advice = (
            f"versions are immutable: make v{_next_version(name, main, change)}.yaml "
            f"and move the label in {LABELS_FILE}"
        )
        if path not in change:
            problems.append(PromptProblem(path, 1, f"deleted, but it is on main; {advice}"))
        elif change[path] != old:
            line = _first_different_line(old, change[path])
            problems.append(PromptProblem(path, line, f"changed, but it is on main; {advice}"))
    return problems


def default_label_problems(service_dir: Path, prompts: PromptSet) -> list[PromptProblem]:
    """Return a problem when ``rag.yaml``'s default prompt and label are not in labels.yaml."""
    if not (service_dir / RAG_FILE).is_file():
        return []
    settings = rag_settings_of(service_dir)
    name, label = settings.prompt_name, settings.prompt_label
    if name is None or label is None or label in prompts.labels.get(name, {}):
        return []
    message = f"prompt.label: {label} is not a label of {name} in {LABELS_FILE}"
    return [PromptProblem(RAG_FILE, settings.prompt_label_line, message)]


def _finding(problem: PromptProblem, rule: str, reason: str) -> Finding:
    return Finding(
        severity=Severity.ERROR,
        rule=rule,
        object=problem.file,
        source=problem.file,
        path=f"line {problem.line}",
        message=str(problem),
        reason=reason,
    )


def _findings(problems: Iterable[PromptProblem], rule: str, reason: str) -> list[Finding]:
    return [_finding(problem, rule, reason) for problem in problems]


def check_prompt_versions(service_dir: Path, main_dir: Path | None) -> tuple[str, list[Finding]]:
    """Check the change's prompts against main's; return the check's subject and findings."""
    change = read_prompt_folder(service_dir)
    main = read_prompt_folder(main_dir) if main_dir is not None else {}
    prompts = read_prompt_set(change)
    findings = _findings(immutability_problems(change, main), RULE_IMMUTABLE, REASON_IMMUTABLE)
    problems = [*prompts.problems, *default_label_problems(service_dir, prompts)]
    findings += _findings(problems, RULE_FILE, REASON_FILE)
    count = len(prompts.versions)
    subject = (
        f"{count} prompt version{'s' * (count != 1)} of {len(prompts.names())} "
        f"prompt{'s' * (len(prompts.names()) != 1)} and {LABELS_FILE}"
    )
    return subject, findings


def has_prompts(service_dir: Path, main_dir: Path | None) -> bool:
    """Tell whether the check applies: the change's folder or main's has ``prompts/``."""
    return (service_dir / PROMPTS_DIR).is_dir() or (
        main_dir is not None and (main_dir / PROMPTS_DIR).is_dir()
    )
