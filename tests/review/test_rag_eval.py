"""The `rag eval` review check's logic, with a fake evaluator: when it runs, what it compares."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.cost.model import Prices
from portal.integrations.rag_eval import FakeRagEvaluator, RagEvalError, RagFigures
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.review.cost_check import MainService
from portal.review.rag_eval import compare_figures, read_rag_settings

RAG_YAML = """\
chunking:
  chunk_size: 800
  chunk_overlap: 100
retrieval:
  top_k: 5
  min_score: {lexical: 0.1, model: 0.3}
prompt:
  name: qa
  label: production
evaluation:
  set: evaluation/eval.yaml
  tolerance: 0.02
"""


def figures(
    hit: float = 0.95, mrr: float = 0.9, faith: float = 1.0, questions: int = 20
) -> RagFigures:
    return RagFigures(hit, mrr, faith, questions, "lexical", "lexical (hashing)", 111)


def service(root: Path, name: str = "assistant") -> Path:
    folder = root / name
    files = {
        "rag.yaml": RAG_YAML,
        "docs/rollback.md": "# Rollback\n\nRun flux suspend first.\n",
        "evaluation/eval.yaml": "version: 1\nquestions: []\n",
        "prompts/labels.yaml": "qa:\n  production: 1\n",
        "prompts/qa/v1.yaml": (
            "template: 'Passages: {context} Question: {question}'\n"
            "variables: [context, question]\nmodel_parameters: {temperature: 0.1}\nnote: First.\n"
        ),
        "app/evaluate.py": "print('the evaluator')\n",
        "README.md": "# assistant\n",
        "deploy/base/kustomization.yaml": "resources: []\n",
    }
    for path, text in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def sides(tmp_path: Path) -> tuple[Path, Path]:
    """The change's service folder and main's, identical to start with."""
    main = service(tmp_path / "main")
    change = tmp_path / "change" / "assistant"
    shutil.copytree(main, change)
    return change, main


def by_side(change: Path, change_figures: RagFigures, main_figures: RagFigures) -> FakeRagEvaluator:
    def answer(folder: Path) -> RagFigures:
        return change_figures if folder == change else main_figures

    return FakeRagEvaluator(answer)


def rag_check(change: Path, main: Path | None, fake: FakeRagEvaluator | None) -> CheckResult | None:
    results = run_manifest_checks(
        change,
        [],
        lambda _: True,
        Prices(),
        CheckTools(rag_evaluator=fake),
        main=MainService("0" * 40, main),
    )
    found = [result for result in results if result.name == "rag eval"]
    assert len(found) <= 1
    return found[0] if found else None


def touch_docs(change: Path) -> None:
    (change / "docs" / "rollback.md").write_text("# Rollback\n\nSuspend nothing.\n")


def test_a_drop_beyond_the_tolerance_fails_naming_both_figures(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)
    fake = by_side(change, figures(hit=0.82), figures(hit=0.95))

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED
    assert "hit@5 0.95 -> 0.82 (-0.13, tolerance 0.02)" in result.summary
    assert "MRR 0.90 -> 0.90 (+0.00, tolerance 0.02)" in result.summary
    assert [finding.message for finding in result.findings] == [
        "hit@5 0.95 -> 0.82 (-0.13, tolerance 0.02): drops by more than the tolerance"
    ]
    assert result.findings[0].rule == "rag-eval" and result.findings[0].source == "rag.yaml"


def test_each_figure_is_compared(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)
    fake = by_side(change, figures(mrr=0.5, faith=0.7), figures())

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED
    messages = " | ".join(finding.message for finding in result.findings)
    assert "MRR 0.90 -> 0.50 (-0.40" in messages and "faithfulness 1.00 -> 0.70 (-0.30" in messages
    assert "hit@5" not in messages


@pytest.mark.parametrize(("before", "after"), [(0.95, 0.94), (0.95, 0.93), (0.9, 1.0)])
def test_within_the_tolerance_passes_with_the_figures(
    sides: tuple[Path, Path], before: float, after: float
) -> None:
    change, main = sides
    touch_docs(change)
    fake = by_side(change, figures(hit=after), figures(hit=before))

    result = rag_check(change, main, fake)

    assert result is not None
    assert result.status == CheckStatus.PASSED, result.summary
    assert f"hit@5 {before:.2f} -> {after:.2f}" in result.summary
    assert "on 20 questions (main: 20)" in result.summary


def test_a_drop_just_past_the_tolerance_shows_enough_decimals(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)
    fake = by_side(change, figures(hit=0.925), figures(hit=0.95))

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED
    assert "hit@5 0.950 -> 0.925 (-0.025, tolerance 0.020)" in result.summary


def test_main_is_evaluated_with_its_own_code_for_both_sides(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)
    fake = by_side(change, figures(), figures())

    rag_check(change, main, fake)

    assert fake.calls == [(change, main), (main, main)]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("rag.yaml", RAG_YAML.replace("top_k: 5", "top_k: 4")),
        ("prompts/qa/v2.yaml", "template: x\n"),
        ("docs/new.md", "# New\n"),
        ("evaluation/eval.yaml", "version: 1\nquestions: [x]\n"),
    ],
)
def test_the_evaluation_runs_when_its_inputs_change(
    sides: tuple[Path, Path], path: str, text: str
) -> None:
    change, main = sides
    (change / path).write_text(text, encoding="utf-8")
    fake = by_side(change, figures(), figures())

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.PASSED
    assert len(fake.calls) == 2


def test_a_deleted_document_counts_as_a_change(sides: tuple[Path, Path]) -> None:
    change, main = sides
    (change / "docs" / "rollback.md").unlink()
    fake = by_side(change, figures(), figures())

    rag_check(change, main, fake)

    assert len(fake.calls) == 2


@pytest.mark.parametrize("path", ["README.md", "deploy/base/kustomization.yaml", "app/evaluate.py"])
def test_other_paths_do_not_run_the_evaluation(sides: tuple[Path, Path], path: str) -> None:
    change, main = sides
    (change / path).write_text("changed\n", encoding="utf-8")
    fake = by_side(change, figures(hit=0.1), figures())

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.PASSED
    assert result.summary.startswith("not run: the change touches none of rag.yaml, prompts/")
    assert fake.calls == []


def test_a_new_service_is_evaluated_alone_with_its_own_code(tmp_path: Path) -> None:
    change = service(tmp_path / "change")
    fake = FakeRagEvaluator(lambda _folder: figures(hit=0.79, mrr=0.68))

    result = rag_check(change, None, fake)

    assert result is not None and result.status == CheckStatus.PASSED
    assert result.summary.startswith("hit@5 0.79, MRR 0.68, faithfulness 1.00 (20 questions")
    assert "nothing to compare with: a new service" in result.summary
    assert fake.calls == [(change, change)]


@pytest.mark.parametrize("side", ["change", "main"])
def test_an_evaluator_that_cannot_run_is_an_error_never_a_pass(
    sides: tuple[Path, Path], side: str
) -> None:
    change, main = sides
    touch_docs(change)
    broken = change if side == "change" else main

    def answer(folder: Path) -> RagFigures:
        if folder == broken:
            raise RagEvalError("the evaluator exited with 1: boom", ["Traceback", "boom"])
        return figures()

    result = rag_check(change, main, FakeRagEvaluator(answer))

    assert result is not None and result.status == CheckStatus.ERROR
    assert f"could not measure {'the change' if side == 'change' else 'main'}" in result.summary
    assert "exited with 1: boom" in result.summary
    assert [finding.message for finding in result.findings] == ["Traceback", "boom"]


def test_a_crashing_evaluator_is_an_error(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)

    def crash(_folder: Path) -> RagFigures:
        raise ValueError("unexpected")

    result = rag_check(change, main, FakeRagEvaluator(crash))

    assert result is not None and result.status == CheckStatus.ERROR


def test_a_change_cannot_loosen_the_tolerance_it_is_judged_by(sides: tuple[Path, Path]) -> None:
    change, main = sides
    (change / "rag.yaml").write_text(RAG_YAML.replace("tolerance: 0.02", "tolerance: 0.5"))
    fake = by_side(change, figures(hit=0.7), figures(hit=0.95))

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED
    assert "hit@5 0.95 -> 0.70 (-0.25, tolerance 0.02)" in result.summary


def test_a_stricter_tolerance_applies_at_once(sides: tuple[Path, Path]) -> None:
    change, main = sides
    (change / "rag.yaml").write_text(RAG_YAML.replace("tolerance: 0.02", "tolerance: 0"))
    fake = by_side(change, figures(hit=0.94), figures(hit=0.95))

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ("tolerance: lots", "rag.yaml line 12: evaluation.tolerance: 'lots' is not a number"),
        ("tolerance: 2", "rag.yaml line 12: evaluation.tolerance: 2 is not within 0..1"),
        ("tolerance: .nan", "rag.yaml line 12: evaluation.tolerance: nan is not within 0..1"),
    ],
)
def test_a_bad_tolerance_fails_naming_the_line(
    sides: tuple[Path, Path], replacement: str, message: str
) -> None:
    change, main = sides
    (change / "rag.yaml").write_text(RAG_YAML.replace("tolerance: 0.02", replacement))
    fake = by_side(change, figures(), figures())

    result = rag_check(change, main, fake)

    assert result is not None and result.status == CheckStatus.FAILED
    assert [finding.message for finding in result.findings] == [message]
    assert fake.calls == []


@pytest.mark.parametrize("path", ["../outside.yaml", "/etc/eval.yaml", ""])
def test_an_evaluation_set_outside_the_folder_is_refused(path: str) -> None:
    settings = read_rag_settings(RAG_YAML.replace("evaluation/eval.yaml", repr(path)))
    assert settings.eval_set is None
    assert settings.problems == (
        (11, f"evaluation.set: {path!r} is not a path inside the service folder"),
    )


def test_the_check_needs_an_evaluator_and_a_rag_yaml(sides: tuple[Path, Path]) -> None:
    change, main = sides
    touch_docs(change)
    assert rag_check(change, main, None) is None
    (change / "rag.yaml").unlink()
    assert rag_check(change, main, by_side(change, figures(), figures())) is None


def test_the_comparison_rounds_no_float_noise_into_a_drop() -> None:
    # 0.1 - 0.08 is 0.020000000000000004 in floating point: at the tolerance, not past it.
    outcome = compare_figures(figures(hit=0.1), figures(hit=0.08), 0.02, "evaluation/eval.yaml")
    assert outcome.findings == []
    assert "hit@5 0.10 -> 0.08 (-0.02, tolerance 0.02)" in outcome.summary
