"""The RAG evaluator as a process: stand-in programs for its failures, then the real one.

The stand-ins are executables given as the evaluator's Python: they show what the portal
does with garbage, a refusal, a crash or a hang, and what the evaluator is given (its
environment, its folder). The integration tests run the real ``python -m app.evaluate``
of a service rendered from the rag-llm-service template, with the Python of a venv holding
the template's runtime lock, through the portal's own review checks.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal import config
from portal.config import Settings
from portal.cost.model import Prices
from portal.integrations import copier as copier_integration
from portal.integrations.rag_eval import (
    MissingRagEvaluator,
    RagEvalCli,
    RagEvalError,
    RagFigures,
    parse_report,
    rag_evaluator,
)
from portal.review.checks import CheckResult, CheckStatus, CheckTools, run_manifest_checks
from portal.review.cost_check import MainService
from portal.scaffold.jobs import check_commit
from portal.scaffold.registry.bundled import publish
from portal.scaffold.registry.manifest import load_template
from tests.conftest import changes_runtime
from tests.templates.rendering import TEMPLATES_DIR, render_service
from tests.templates.service_venv import RUNTIME_LOCK, lock_venv

TEMPLATE = TEMPLATES_DIR / "rag-llm-service"
AUTHOR = ("Test", "test@example.invalid")
REPORT = {
    "hit_at_5": 0.9,
    "mrr": 0.8,
    "faithfulness": 1.0,
    "questions": 3,
    "mode": "lexical",
    "embedding": "lexical (hashing)",
    "chunks": 12,
}


def stand_in(tmp_path: Path, body: str) -> Path:
    """Write an executable standing in for the evaluator's Python, running ``body``."""
    program = tmp_path / "stand-in-python"
    program.write_text(f"#!{sys.executable}\n{textwrap.dedent(body)}", encoding="utf-8")
    program.chmod(0o755)
    return program


def service(tmp_path: Path) -> Path:
    folder = tmp_path / "service"
    (folder / "app").mkdir(parents=True)
    (folder / "app" / "evaluate.py").write_text("# the service's evaluator\n")
    (folder / "docs").mkdir()
    (folder / "docs" / "rollback.md").write_text("# Rollback\n")
    (folder / "rag.yaml").write_text("evaluation: {set: evaluation/eval.yaml, tolerance: 0.02}\n")
    return folder


# --- the report ---------------------------------------------------------------------------------


def test_a_well_formed_report_is_read() -> None:
    figures = parse_report(json.dumps({**REPORT, "per_question": []}))
    assert figures == RagFigures(0.9, 0.8, 1.0, 3, "lexical", "lexical (hashing)", 12)


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ("hello", "did not print a JSON report"),
        ("", "did not print a JSON report"),
        (json.dumps(REPORT) + "\nmore", "did not print a JSON report"),
        ("[1, 2]", "is a list, not an object"),
        (json.dumps({**REPORT, "hit_at_5": 1.5}), "hit_at_5 = 1.5, not within 0..1"),
        (json.dumps({**REPORT, "mrr": True}), "no number mrr"),
        (json.dumps({**REPORT, "mrr": "0.8"}), "no number mrr"),
        (json.dumps(REPORT).replace("1.0", "NaN"), "NaN is not a number"),
        (json.dumps({k: v for k, v in REPORT.items() if k != "faithfulness"}), "faithfulness"),
        (json.dumps({**REPORT, "questions": 0}), "no whole number questions >= 1"),
        (json.dumps({**REPORT, "chunks": 1.5}), "no whole number chunks"),
        (json.dumps({**REPORT, "embedding": ""}), "no text embedding"),
        ("x" * (1 << 21), "characters, not a report"),
    ],
)
def test_anything_but_a_well_formed_report_is_refused(report: str, reason: str) -> None:
    with pytest.raises(RagEvalError, match=re.escape(reason)):
        parse_report(report)


# --- the process ---------------------------------------------------------------------------------


def test_the_evaluator_runs_on_a_copy_with_main_code_and_a_minimal_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.json"
    program = stand_in(
        tmp_path,
        f"""
        import json, os, sys
        from pathlib import Path
        files = sorted(str(p) for p in Path(".").rglob("*") if p.is_file() or p.is_symlink())
        Path({str(seen)!r}).write_text(json.dumps({{
            "argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ), "files": files,
            "evaluate": Path("app/evaluate.py").read_text(),
        }}))
        print({json.dumps(REPORT)!r})
        """,
    )
    change = service(tmp_path)
    (change / "app" / "evaluate.py").write_text("# the change's own code\n")
    (change / "app" / "retrieval.py").write_text("# more of the change's own code\n")
    (tmp_path / "outside.txt").write_text("a file of the portal's machine\n")
    (change / "docs" / "secret.md").symlink_to(tmp_path / "outside.txt")
    (change / "linked").symlink_to(tmp_path, target_is_directory=True)
    main = service(tmp_path / "main")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("PORTAL_SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))

    figures = RagEvalCli(program).evaluate(change, main)

    assert figures.hit_at_5 == 0.9 and figures.chunks == 12
    recorded: dict[str, Any] = json.loads(seen.read_text())
    assert recorded["argv"] == ["-E", "-s", "-B", "-m", "app.evaluate", "--json"]
    assert recorded["evaluate"] == "# the service's evaluator\n"  # main's code, not the change's
    assert recorded["files"] == ["app/evaluate.py", "docs/rollback.md", "rag.yaml"]
    assert Path(recorded["cwd"]) != change and not Path(recorded["cwd"]).exists()
    env = recorded["env"]
    assert env["HF_HUB_OFFLINE"] == "1"
    assert not {"HTTPS_PROXY", "PORTAL_SECRET_KEY", "PYTHONPATH"} & set(env)
    assert Path(env["HOME"]).parent == Path(recorded["cwd"]).parent


@pytest.mark.parametrize(
    ("body", "message", "problems"),
    [
        (
            "import sys\nprint('rag.yaml line 3: chunk_size: must be positive', file=sys.stderr)\n"
            "print('evaluation/eval.yaml line 9: source: gone.md', file=sys.stderr)\nsys.exit(2)\n",
            "refused the service's files: rag.yaml line 3: chunk_size: must be positive",
            [
                "rag.yaml line 3: chunk_size: must be positive",
                "evaluation/eval.yaml line 9: source: gone.md",
            ],
        ),
        (
            "raise RuntimeError('no module named qdrant_client')\n",
            "exited with 1: RuntimeError: no module named qdrant_client",
            None,
        ),
        ("print('hit@5 0.9')\n", "did not print a JSON report", None),
    ],
)
def test_an_evaluator_that_fails_says_why(
    tmp_path: Path, body: str, message: str, problems: list[str] | None
) -> None:
    with pytest.raises(RagEvalError, match=re.escape(message)) as caught:
        RagEvalCli(stand_in(tmp_path, body)).evaluate(service(tmp_path), service(tmp_path / "m"))
    if problems is not None:
        assert caught.value.problems == problems


def test_figures_of_a_folder_already_measured_are_remembered(tmp_path: Path) -> None:
    """Main is measured again for every change on the same base otherwise: once is enough."""
    runs = tmp_path / "runs.txt"
    program = stand_in(
        tmp_path,
        f"""
        from pathlib import Path
        with Path({str(runs)!r}).open("a") as log:
            log.write("run\\n")
        print({json.dumps(REPORT)!r})
        """,
    )
    evaluator = RagEvalCli(program)
    main = service(tmp_path / "main")

    first = evaluator.evaluate(main, main)
    assert evaluator.evaluate(main, main) == first
    assert runs.read_text().count("run") == 1
    (main / "docs" / "rollback.md").write_text("# Rollback\n\nSuspend the Kustomization.\n")
    evaluator.evaluate(main, main)  # another document: measured again
    assert runs.read_text().count("run") == 2


def test_an_evaluator_that_hangs_is_stopped(tmp_path: Path) -> None:
    program = stand_in(tmp_path, "import time\ntime.sleep(30)\n")
    with pytest.raises(RagEvalError, match=r"did not finish within 0\.5 s"):
        RagEvalCli(program, timeout=0.5).evaluate(service(tmp_path), service(tmp_path / "m"))


def test_code_without_an_evaluator_is_refused_before_anything_runs(tmp_path: Path) -> None:
    code = service(tmp_path / "main")
    (code / "app" / "evaluate.py").unlink()
    program = stand_in(tmp_path, "raise SystemExit('must not run')\n")
    with pytest.raises(RagEvalError, match=r"app/evaluate\.py is missing"):
        RagEvalCli(program).evaluate(service(tmp_path), code)


def test_a_missing_python_says_how_to_install_it(tmp_path: Path) -> None:
    folder = service(tmp_path)
    missing = rag_evaluator(tmp_path / "no-python")
    assert isinstance(missing, MissingRagEvaluator)
    with pytest.raises(RagEvalError, match=r"is not an executable Python \(run `make tools`"):
        missing.evaluate(folder, folder)
    with pytest.raises(RagEvalError, match=r"no Python at \.tools/rag-eval/bin/python"):
        rag_evaluator(None).evaluate(folder, folder)


def test_the_setting_defaults_to_the_python_make_tools_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "CHECKOUT", tmp_path)
    settings = Settings(data_dir=tmp_path / "var")
    assert settings.resolved_rag_eval_python() is None
    built = tmp_path / ".tools" / "rag-eval" / "bin" / "python"
    built.parent.mkdir(parents=True)
    built.write_text("")
    assert settings.resolved_rag_eval_python() == built
    configured = Settings(data_dir=tmp_path / "var", rag_eval_python=Path("elsewhere/python"))
    assert configured.resolved_rag_eval_python() == Path("elsewhere/python").absolute()


def test_a_python_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    program = tmp_path / "broken-python"
    program.write_text("#!/nonexistent/interpreter\n")
    program.chmod(0o755)
    with pytest.raises(RagEvalError, match="could not start"):
        RagEvalCli(program).evaluate(service(tmp_path), service(tmp_path / "m"))


# --- the real evaluator of a rendered service ------------------------------------------------


@pytest.fixture(scope="module")
def evaluator_python() -> Path:
    """The Python of a venv holding the template's runtime lock, as `make tools` builds it."""
    return lock_venv(TEMPLATE / "template" / RUNTIME_LOCK, "rag-llm-service")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The template rendered as the portal renders it, with its default answers."""
    template = load_template(TEMPLATE)
    try:
        published = publish(template, tmp_path_factory.mktemp("data"))
        answers: dict[str, object] = {
            "name": "runbook-assistant",
            "owner": "platform-team",
            "description": "Answers from the platform runbooks",
        }
        yield render_service(template, published, answers, tmp_path_factory.mktemp("r")).dest
    finally:
        copier_integration.shutdown()


def real_check(python: Path, change: Path, main: Path | None) -> CheckResult:
    tools = CheckTools(rag_evaluator=RagEvalCli(python, timeout=120))
    results = run_manifest_checks(
        change, [], lambda _: True, Prices(), tools, main=MainService("0" * 40, main)
    )
    return next(result for result in results if result.name == "rag eval")


def sides(rendered: Path, tmp_path: Path) -> tuple[Path, Path]:
    main, change = tmp_path / "main" / rendered.name, tmp_path / "change" / rendered.name
    shutil.copytree(rendered, main)
    shutil.copytree(rendered, change)
    return change, main


FIGURE = r"\d\.\d{2,4}"


@pytest.mark.integration
def test_a_new_rendered_service_passes_with_its_figures(
    evaluator_python: Path, rendered: Path
) -> None:
    result = real_check(evaluator_python, rendered, None)

    assert result.status == CheckStatus.PASSED, result.summary
    assert re.match(
        rf"hit@5 {FIGURE}, MRR {FIGURE}, faithfulness {FIGURE} \(\d+ questions", result.summary
    )
    assert (
        "lexical" in result.summary and "nothing to compare with: a new service" in result.summary
    )


def strict_threshold(rag_yaml: str) -> str:
    """Raise the lexical relevance threshold to 0.95, whatever it is: most answers are lost."""
    raised, count = re.subn(r"(?m)^(\s+lexical:\s*)[0-9.]+", r"\g<1>0.95", rag_yaml)
    assert count == 1, "rag.yaml has no lexical min_score line"
    return raised


@pytest.mark.integration
def test_a_retrieval_setting_that_loses_answers_fails_with_both_figures(
    evaluator_python: Path, rendered: Path, tmp_path: Path
) -> None:
    change, main = sides(rendered, tmp_path)
    rag = change / "rag.yaml"
    rag.write_text(strict_threshold(rag.read_text(encoding="utf-8")), encoding="utf-8")
    # The change's own code never runs in the portal: main's evaluator measures both sides.
    (change / "app" / "evaluate.py").write_text("raise SystemExit('the change ran its code')\n")

    result = real_check(evaluator_python, change, main)

    assert result.status == CheckStatus.FAILED, result.summary
    drop = rf"hit@5 ({FIGURE}) -> ({FIGURE}) \(-{FIGURE}, tolerance 0\.02\d*\)"
    found = re.search(drop, result.summary)
    assert found is not None, result.summary
    assert float(found[1]) - float(found[2]) > 0.02
    assert any(finding.rule == "rag-eval" for finding in result.findings)


@pytest.mark.integration
def test_an_unrelated_document_keeps_the_figures(
    evaluator_python: Path, rendered: Path, tmp_path: Path
) -> None:
    change, main = sides(rendered, tmp_path)
    (change / "docs" / "holidays.md").write_text(
        "# Holidays\n\nThe office is closed between the years.\n", encoding="utf-8"
    )

    result = real_check(evaluator_python, change, main)

    assert result.status == CheckStatus.PASSED, result.summary
    assert result.summary.startswith("within the tolerance of main: hit@5 ")


@pytest.mark.integration
def test_an_evaluation_set_naming_a_missing_document_is_an_error(
    evaluator_python: Path, rendered: Path, tmp_path: Path
) -> None:
    change, main = sides(rendered, tmp_path)
    (change / "docs" / "rollback.md").unlink()

    result = real_check(evaluator_python, change, main)

    assert result.status == CheckStatus.ERROR, result.summary
    assert "refused the service's files" in result.summary
    assert any("rollback.md" in finding.message for finding in result.findings)


@pytest.mark.integration
def test_an_edit_is_checked_against_its_base_on_main(
    evaluator_python: Path, rendered: Path, portal: TestClient, tmp_path: Path
) -> None:
    """Through the check stage: main's folder is the edit commit's parent's."""
    repo = changes_runtime(portal).gitops()
    folder = f"services/{rendered.name}"
    files = {
        f"{folder}/{path.relative_to(rendered).as_posix()}": path.read_bytes()
        for path in sorted(rendered.rglob("*"))
        if path.is_file()
    }
    repo.create_branch(f"scaffold/{rendered.name}", files, "Add the assistant", AUTHOR)
    base = repo.merge(f"scaffold/{rendered.name}", "Merge the assistant", AUTHOR)
    rag = strict_threshold(files[f"{folder}/rag.yaml"].decode()).encode()
    prompt = files[f"{folder}/prompts/qa/v1.yaml"] + b"# edited after the merge\n"
    edits = {f"{folder}/rag.yaml": rag, f"{folder}/prompts/qa/v1.yaml": prompt}
    commit = repo.create_edit_branch("change/assistant/1", base, edits, "Tune", AUTHOR)
    tools = CheckTools(rag_evaluator=RagEvalCli(evaluator_python, timeout=120))

    results = {
        result.name: result
        for result in check_commit(
            repo, commit, rendered.name, [], lambda _: True, tools, tmp_path / "work"
        )
    }

    assert results["rag eval"].status == CheckStatus.FAILED, results["rag eval"].summary
    assert re.search(rf"hit@5 {FIGURE} -> {FIGURE} \(-", results["rag eval"].summary)
    assert results["prompts"].status == CheckStatus.FAILED
    added_line = len(files[f"{folder}/prompts/qa/v1.yaml"].splitlines()) + 1
    assert [finding.message for finding in results["prompts"].findings] == [
        f"prompts/qa/v1.yaml line {added_line}: changed, but it is on main; versions are "
        "immutable: make v2.yaml and move the label in prompts/labels.yaml"
    ]
