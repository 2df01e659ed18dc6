"""Prompt versions and labels: the shipped folder loads, every problem is named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.prompts import PromptError, PromptRegistry, UnknownPromptLabelError, placeholders

from .conftest import SERVICE_ROOT, write_docs

GOOD = """template: |
  Passages:
  {context}
  Question: {question}
variables: [context, question]
model_parameters:
  temperature: 0.2
  max_tokens: 100
note: A note.
"""


def problems_of(folder: Path) -> list[str]:
    """Load a folder that must be refused; return its problems."""
    with pytest.raises(PromptError) as caught:
        PromptRegistry.load(folder)
    return caught.value.problems


def test_the_shipped_prompts_load_and_the_labels_resolve() -> None:
    """prompts/ of the service is valid, and rag.yaml's label points at a version."""
    registry = PromptRegistry.load(SERVICE_ROOT / "prompts")
    production = registry.resolve("qa", "production")
    assert production.name == "qa" and production.version >= 1
    assert set(production.variables) == {"context", "question"}
    assert registry.labels()["qa"]["production"] == production.version
    assert production in registry.all()
    assert len(production.sha256) == 64 and production.note


def test_a_version_becomes_a_chat_prompt_with_the_service_variables(tmp_path: Path) -> None:
    """The template is filled with the passages and the question, as one human message."""
    folder = write_docs(tmp_path, {"qa/v1.yaml": GOOD, "labels.yaml": "qa: {production: 1}\n"})
    version = PromptRegistry.load(folder).resolve("qa", "production")
    assert version.model_parameters == {"temperature": 0.2, "max_tokens": 100}
    messages = version.chat_prompt().invoke({"context": "[1] a.md\nx", "question": "why?"})
    (message,) = messages.to_messages()
    assert message.type == "human"
    assert message.content == "Passages:\n[1] a.md\nx\nQuestion: why?\n"


def test_labels_pick_versions_and_unknown_ones_are_named(tmp_path: Path) -> None:
    """Each label serves its version; an unknown label or prompt lists what exists."""
    second = GOOD.replace("A note.", "Second.")
    folder = write_docs(
        tmp_path,
        {"qa/v1.yaml": GOOD, "qa/v2.yaml": second, "labels.yaml": "qa:\n  a: 1\n  b: 2\n"},
    )
    registry = PromptRegistry.load(folder)
    assert registry.resolve("qa", "a").version == 1
    assert registry.resolve("qa", "b").note == "Second."
    assert [(p.name, p.version) for p in registry.all()] == [("qa", 1), ("qa", 2)]
    with pytest.raises(
        UnknownPromptLabelError, match=r"unknown label 'c' of prompt 'qa' \(labels: a, b\)"
    ):
        registry.resolve("qa", "c")
    with pytest.raises(UnknownPromptLabelError, match="no labels for prompt 'other'"):
        registry.resolve("other", "a")


def test_every_problem_of_a_version_is_named_with_its_file_line_and_field(tmp_path: Path) -> None:
    """One load lists them all: the reviewer fixes the change in one go."""
    bad = """template: "Use {context} for {question} and {extra}"
variables: [context, question, extra]
model_parameters:
  temperature: 3
  max_tokens: 1.5
  top_k: 4
colour: blue
"""
    folder = write_docs(tmp_path, {"qa/v1.yaml": bad, "labels.yaml": "qa: {production: 1}\n"})
    problems = problems_of(folder)
    assert "qa/v1.yaml line 7: colour: unknown field; known: " in "\n".join(problems)
    for expected in (
        f"{tmp_path.name}/qa/v1.yaml line 1: note: missing",
        f"{tmp_path.name}/qa/v1.yaml line 2: variables: extra: the service fills only context, "
        "question",
        f"{tmp_path.name}/qa/v1.yaml line 4: model_parameters.temperature: must be between 0 and "
        "2, got 3",
        f"{tmp_path.name}/qa/v1.yaml line 5: model_parameters.max_tokens: must be an integer",
        f"{tmp_path.name}/qa/v1.yaml line 6: model_parameters.top_k: unknown parameter; known: "
        "temperature, top_p, max_tokens, presence_penalty, frequency_penalty, seed",
        # The version is refused, so the label pointing at it is too.
        f"{tmp_path.name}/labels.yaml line 1: qa.production: no version 1 (versions: )",
    ):
        assert expected in problems, problems


@pytest.mark.parametrize(
    ("template", "variables", "message"),
    [
        (
            "{question}",
            "[context, question]",
            "must be the template's placeholders (question), got context, question",
        ),
        ("{context}", "[context]", "must include question"),
        ("{question} {0}", "[question]", "{0} is not a placeholder"),
        ("{question.upper}", "[question]", "{question.upper} is not a placeholder"),
        ("{question", "[question]", "expected '}' before end of string"),
        ("{question}", "[question, question]", "lists a name twice"),
        ("{question}", "question", "must be a list of names"),
        ("  ", "[question]", "template: must be non-empty text"),
    ],
)
def test_the_variables_must_be_the_templates_placeholders(
    tmp_path: Path, template: str, variables: str, message: str
) -> None:
    """A variable the template lacks, or a placeholder nobody fills, is refused."""
    text = f"template: {template!r}\nvariables: {variables}\nnote: n\n"
    folder = write_docs(tmp_path, {"qa/v1.yaml": text, "labels.yaml": "qa: {}\n"})
    assert any(message in problem for problem in problems_of(folder)), problems_of(folder)


def test_files_names_yaml_and_labels_are_checked(tmp_path: Path) -> None:
    """Bad YAML (its line), misnamed files, labels of unknown prompts and versions, no labels."""
    folder = write_docs(
        tmp_path,
        {
            "qa/v1.yaml": GOOD,
            "qa/v2.yaml": "template: [unclosed\n",
            "qa/v01.yaml": GOOD,
            "qa/draft.yaml": GOOD,
            "qa/README.md": "Notes are fine.",
            "Bad_Name/v1.yaml": GOOD,
            "labels.yaml": (
                "qa:\n  production: 1\n  staging: 3\n  Live: 1\nother:\n  production: 1\n"
            ),
        },
    )
    problems = problems_of(folder)
    name = tmp_path.name
    assert f"{name}/qa/v2.yaml line 2: yaml: not valid YAML" in "\n".join(problems)
    assert f"{name}/qa/v01.yaml: not a prompt version (name it v<N>.yaml)" in problems
    assert f"{name}/qa/draft.yaml: not a prompt version (name it v<N>.yaml)" in problems
    assert f"{name}/Bad_Name: a prompt name is lower-case, e.g. qa" in problems
    assert f"{name}/labels.yaml line 3: qa.staging: no version 3 (versions: 1)" in problems
    assert (
        f"{name}/labels.yaml line 4: qa.Live: a label is a lower-case name such as production"
        in problems
    )
    assert f"{name}/labels.yaml line 5: other: no such prompt (no folder of versions)" in problems
    assert not any("README" in problem for problem in problems)
    (folder / "labels.yaml").unlink()
    assert f"{name}/labels.yaml: missing (it maps labels to versions)" in problems_of(folder)


def test_an_empty_or_missing_folder_is_refused(tmp_path: Path) -> None:
    """A service without prompts does not start."""
    assert problems_of(tmp_path / "nowhere") == ["nowhere: no such folder (PROMPTS_DIR)"]
    (tmp_path / "empty").mkdir()
    assert "empty: no prompts (expected empty/<name>/v<N>.yaml)" in problems_of(tmp_path / "empty")


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    """YAML would keep the last silently; a reviewer would read the first."""
    twice = GOOD + "note: Another.\n"
    folder = write_docs(tmp_path, {"qa/v1.yaml": twice, "labels.yaml": "qa: {}\n"})
    assert f"{tmp_path.name}/qa/v1.yaml line 10: note: given twice" in problems_of(folder)


def test_placeholders_are_listed_once_in_order() -> None:
    """Doubled braces are literal text, not placeholders."""
    assert placeholders("{question} {{not}} {context} {question}") == ["question", "context"]
