"""The `prompts` review check: immutable versions, labels pointing at versions, sound files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.cost.model import Prices
from portal.models.prompt_files import read_prompt_set, template_variables
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.review.cost_check import MainService
from tests.templates.rendering import TEMPLATES_DIR

TEMPLATE_SERVICE = TEMPLATES_DIR / "rag-llm-service" / "template"
V1 = """\
# Immutable once merged.
template: |
  Passages:
  {context}

  Question: {question}
variables: [context, question]
model_parameters:
  temperature: 0.1
  max_tokens: 512
note: First version.
"""
V2 = V1.replace("First version.", "Asks for shorter answers.").replace("512", "256")
LABELS = "qa:\n  production: 1\n  staging: 1\n"
RAG = "prompt:\n  name: qa\n  label: production\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    """Main's service folder with one prompt version, and the change's copy of it."""
    main = write(
        tmp_path / "main" / "assistant",
        {"rag.yaml": RAG, "prompts/labels.yaml": LABELS, "prompts/qa/v1.yaml": V1},
    )
    change = tmp_path / "change" / "assistant"
    shutil.copytree(main, change)
    return change, main


def prompts_check(change: Path, main: Path | None) -> CheckResult | None:
    results = run_manifest_checks(
        change, [], lambda _: True, Prices(), CheckTools(), main=MainService("0" * 40, main)
    )
    found = [result for result in results if result.name == "prompts"]
    return found[0] if found else None


def messages(result: CheckResult | None) -> list[str]:
    assert result is not None
    return [finding.message for finding in result.findings]


def test_the_template_prompts_pass() -> None:
    result = prompts_check(TEMPLATE_SERVICE, None)
    assert result is not None and result.status == CheckStatus.PASSED, messages(result)
    assert result.summary == "1 prompt version of 1 prompt and prompts/labels.yaml: no problems"


def test_a_new_version_with_the_label_moved_passes(sides: tuple[Path, Path]) -> None:
    change, main = sides
    write(
        change,
        {"prompts/qa/v2.yaml": V2, "prompts/labels.yaml": LABELS.replace("ing: 1", "ing: 2")},
    )
    result = prompts_check(change, main)
    assert result is not None and result.status == CheckStatus.PASSED, messages(result)


def test_editing_a_version_on_main_fails_at_the_first_changed_line(
    sides: tuple[Path, Path],
) -> None:
    change, main = sides
    write(change, {"prompts/qa/v1.yaml": V1.replace("512", "256")})
    result = prompts_check(change, main)
    assert result is not None and result.status == CheckStatus.FAILED
    assert messages(result) == [
        "prompts/qa/v1.yaml line 10: changed, but it is on main; versions are immutable: "
        "make v2.yaml and move the label in prompts/labels.yaml"
    ]
    assert result.findings[0].rule == "prompt-immutable" and result.findings[0].path == "line 10"


def test_deleting_a_version_on_main_fails_and_names_the_next_free_version(
    sides: tuple[Path, Path],
) -> None:
    change, main = sides
    write(main, {"prompts/qa/v2.yaml": V2})
    write(change, {"prompts/qa/v2.yaml": V2, "prompts/labels.yaml": "qa:\n  production: 2\n"})
    (change / "prompts" / "qa" / "v1.yaml").unlink()
    result = prompts_check(change, main)
    assert messages(result) == [
        "prompts/qa/v1.yaml line 1: deleted, but it is on main; versions are immutable: "
        "make v3.yaml and move the label in prompts/labels.yaml"
    ]


def test_deleting_the_whole_prompts_folder_fails(sides: tuple[Path, Path]) -> None:
    change, main = sides
    shutil.rmtree(change / "prompts")
    result = prompts_check(change, main)
    assert result is not None and result.status == CheckStatus.FAILED
    assert any("prompts/qa/v1.yaml line 1: deleted" in message for message in messages(result))


def test_a_version_new_in_the_change_may_still_be_edited(tmp_path: Path) -> None:
    change = write(tmp_path / "change", {"prompts/labels.yaml": LABELS, "prompts/qa/v1.yaml": V1})
    result = prompts_check(change, tmp_path / "missing")
    assert result is not None and result.status == CheckStatus.PASSED, messages(result)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (
            "qa:\n  production: 1\n  staging: 3\n",
            "prompts/labels.yaml line 3: qa.staging: points at version 3, "
            "but prompts/qa/v3.yaml does not exist",
        ),
        (
            "qa:\n  production: 1\n  staging: latest\n",
            "prompts/labels.yaml line 3: qa.staging: 'latest' is not a version number (1, 2, ...)",
        ),
        (
            "qa:\n  production: 1\nsummary:\n  production: 1\n",
            "prompts/labels.yaml line 3: summary: no such prompt (no prompts/summary/v<N>.yaml)",
        ),
        ("qa: [1, 2]\n", "prompts/labels.yaml line 1: qa: must map labels to version numbers"),
        ("qa:\n  production: 1\n   staging: 1\n", "prompts/labels.yaml line 3: not valid YAML"),
        ("qa:\n  production: 1\n  production: 1\n", "line 3: key 'production' is given twice"),
        ("qa:\n  Production!: 1\n", "line 2: qa.Production!: a label is a lower-case name"),
    ],
)
def test_labels_must_parse_and_point_at_existing_versions(
    sides: tuple[Path, Path], labels: str, expected: str
) -> None:
    change, main = sides
    write(change, {"prompts/labels.yaml": labels})
    found = messages(prompts_check(change, main))
    assert any(expected in message for message in found), found


def test_versions_need_a_labels_file(sides: tuple[Path, Path]) -> None:
    change, main = sides
    (change / "prompts" / "labels.yaml").unlink()
    found = messages(prompts_check(change, main))
    assert found[0].startswith("prompts/labels.yaml line 1: missing: prompts are served by label")


def test_the_default_label_of_rag_yaml_must_exist(sides: tuple[Path, Path]) -> None:
    change, main = sides
    write(change, {"prompts/labels.yaml": "qa:\n  staging: 1\n"})
    assert messages(prompts_check(change, main)) == [
        "rag.yaml line 3: prompt.label: production is not a label of qa in prompts/labels.yaml"
    ]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (V1.replace("variables: [context, question]", "variables: [context]"),
         "prompts/qa/v2.yaml line 6: template: {question} is not in variables"),
        (V1.replace("variables: [context, question]", "variables: [context, question, tone]"),
         "prompts/qa/v2.yaml line 7: variables[2]: tone is not a placeholder of the template"),
        (V1.replace("variables: [context, question]", "variables: [context, question, context]"),
         "prompts/qa/v2.yaml line 7: variables[2]: context is listed twice"),
        (V1.replace("{context}", "{context.text}"),
         "line 2: template: placeholder {context.text} is not a plain name like {question}"),
        (V1.replace("{context}", "{context"),
         "(write literal braces as {{ and }})"),
        (V1.replace("note: First version.\n", ""), "prompts/qa/v2.yaml line 2: missing note"),
        (V1.replace("note: First version.", "note: ''"), "line 11: note: must say what"),
        (V1 + "owner: me\n", "line 12: owner: not a field of a prompt version"),
        (V1.replace("  temperature: 0.1\n", "  released: 2024-01-01\n"),
         "line 8: model_parameters: must map names to numbers"),
        ("- template\n", "prompts/qa/v2.yaml line 1: must be a mapping of template, variables"),
        ("template: [\n", "prompts/qa/v2.yaml line 1: not valid YAML"),
    ],
)  # fmt: skip
def test_each_version_file_is_checked_with_file_and_line(
    sides: tuple[Path, Path], version: str, expected: str
) -> None:
    change, main = sides
    write(change, {"prompts/qa/v2.yaml": version})
    result = prompts_check(change, main)
    assert result is not None and result.status == CheckStatus.FAILED
    assert any(expected in message for message in messages(result)), messages(result)


def test_escaped_braces_are_not_placeholders() -> None:
    assert template_variables('Answer as JSON {{"a": 1}} to {question}') == (["question"], None)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("prompts/qa/latest.yaml", "prompts/qa/latest.yaml line 1: not a prompt file"),
        ("prompts/qa/v01.yaml", "prompts/qa/v01.yaml line 1: not a prompt file"),
        ("prompts/Q A/v1.yaml", "prompts/Q A/v1.yaml line 1: Q A: a prompt name is lower-case"),
    ],
)
def test_only_the_prompt_layout_is_accepted(
    sides: tuple[Path, Path], path: str, expected: str
) -> None:
    change, main = sides
    write(change, {path: V1, "prompts/README.md": "# Our prompts\n"})
    found = messages(prompts_check(change, main))
    assert len(found) == 1 and found[0].startswith(expected), found


def test_a_service_without_prompts_has_no_prompts_check(tmp_path: Path) -> None:
    folder = write(tmp_path / "plain", {"README.md": "# plain\n"})
    assert prompts_check(folder, None) is None


def test_the_prompt_set_says_which_label_points_where() -> None:
    prompts = read_prompt_set(
        {
            "prompts/labels.yaml": b"qa:\n  production: 1\n  staging: 2\n",
            "prompts/qa/v1.yaml": V1.encode(),
            "prompts/qa/v2.yaml": V2.encode(),
            "docs/other.md": b"ignored",
        }
    )
    assert prompts.problems == ()
    assert [version.version for version in prompts.versions_of("qa")] == [1, 2]
    assert prompts.labels_at("qa", 2) == ["staging"]
    assert prompts.versions_of("qa")[1].model_parameters == {"temperature": 0.1, "max_tokens": 256}


def test_a_symbolic_link_is_never_read_as_a_version(
    sides: tuple[Path, Path], tmp_path: Path
) -> None:
    change, main = sides
    outside = write(tmp_path / "outside", {"v2.yaml": V2}) / "v2.yaml"
    (change / "prompts" / "qa" / "v2.yaml").symlink_to(outside)
    write(change, {"prompts/labels.yaml": LABELS.replace("staging: 1", "staging: 2")})
    assert messages(prompts_check(change, main)) == [
        "prompts/labels.yaml line 3: qa.staging: points at version 2, "
        "but prompts/qa/v2.yaml does not exist"
    ]


def test_a_huge_version_file_is_refused_unread(sides: tuple[Path, Path]) -> None:
    change, main = sides
    write(change, {"prompts/qa/v2.yaml": V2 + "# padding\n" * 40_000})
    assert messages(prompts_check(change, main)) == [
        "prompts/qa/v2.yaml line 1: larger than 256 KiB"
    ]
