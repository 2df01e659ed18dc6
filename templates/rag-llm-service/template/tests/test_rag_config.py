"""rag.yaml: the shipped file loads; every problem is reported at once with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.rag_config import RagConfigError, load_rag_config

from .conftest import SERVICE_ROOT

GOOD = """chunking:
  chunk_size: 500
  chunk_overlap: 50
retrieval:
  top_k: 4
  min_score:
    lexical: 0.1
    model: 0.35
prompt:
  name: qa
  label: staging
evaluation:
  set: evaluation/eval.yaml
  tolerance: 0.05
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rag.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RagConfigError) as error:
        load_rag_config(path)
    assert str(error.value) == "\n".join(error.value.problems)
    return error.value.problems


def test_the_shipped_rag_yaml_loads() -> None:
    """The service's own rag.yaml is valid; its evaluation set is beside it."""
    config = load_rag_config(SERVICE_ROOT / "rag.yaml")
    assert 0 <= config.chunk_overlap < config.chunk_size
    assert 1 <= config.top_k <= 50
    assert set(config.min_score) == {"lexical", "model"}
    assert (config.prompt_name, config.prompt_label) == ("qa", "production")
    assert config.eval_set == SERVICE_ROOT / "evaluation" / "eval.yaml"


def test_every_value_is_read(tmp_path: Path) -> None:
    """Each field lands where it belongs; the set's path is relative to rag.yaml's folder."""
    path = tmp_path / "rag.yaml"
    path.write_text(GOOD, encoding="utf-8")
    config = load_rag_config(path)
    assert (config.chunk_size, config.chunk_overlap, config.top_k) == (500, 50, 4)
    assert config.min_score == {"lexical": 0.1, "model": 0.35}
    assert (config.prompt_name, config.prompt_label) == ("qa", "staging")
    assert config.eval_set == tmp_path / "evaluation" / "eval.yaml"
    assert config.tolerance == 0.05


def test_all_problems_are_reported_at_once_with_their_lines(tmp_path: Path) -> None:
    """Wrong types, out of range values, unknown and missing fields: one line each."""
    text = """chunking:
  chunk_size: 500
  chunk_overlap: 500
  chunk_sise: 3
retrieval:
  top_k: 0
  min_score:
    lexical: 1.5
    bm25: 0.2
prompt:
  name: ""
  label: [production]
evaluation:
  set: /etc/eval.yaml
  tolerance: yes
extra: 1
"""
    assert _problems(tmp_path, text) == [
        "rag.yaml line 16: extra: unknown section",
        "rag.yaml line 4: chunking.chunk_sise: unknown field",
        "rag.yaml line 3: chunking.chunk_overlap: must be smaller than chunk_size (500)",
        "rag.yaml line 6: retrieval.top_k: must be between 1 and 50, got 0",
        "rag.yaml line 15: evaluation.tolerance: must be a number, got True",
        "rag.yaml line 9: retrieval.min_score.bm25: unknown embedding mode (use lexical, model)",
        "rag.yaml line 8: retrieval.min_score.lexical: must be between 0 and 1, got 1.5",
        "rag.yaml line 7: retrieval.min_score.model: missing",
        "rag.yaml line 11: prompt.name: must be a non-empty name, got ''",
        "rag.yaml line 12: prompt.label: must be a non-empty name, got a list",
        "rag.yaml line 14: evaluation.set: must be a path inside the repository, "
        "got '/etc/eval.yaml'",
    ]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("chunk_size: 500", "chunk_size: 50", "line 2: chunking.chunk_size: must be between 100"),
        (
            "chunk_size: 500",
            "chunk_size: 500.5",
            "chunking.chunk_size: must be an integer, got 500.5",
        ),
        ("chunk_overlap: 50", "chunk_overlap: -1", "chunking.chunk_overlap: must be between 0"),
        ("top_k: 4", "top_k: 51", "line 5: retrieval.top_k: must be between 1 and 50, got 51"),
        ("top_k: 4", "top_k: true", "retrieval.top_k: must be an integer, got True"),
        (
            "model: 0.35",
            "model: -0.1",
            "line 8: retrieval.min_score.model: must be between 0 and 1",
        ),
        ("model: 0.35", "model: high", "retrieval.min_score.model: must be a number, got 'high'"),
        (
            "tolerance: 0.05",
            "tolerance: 1.01",
            "line 14: evaluation.tolerance: must be between 0 and 1",
        ),
        ("set: evaluation/eval.yaml", "set: ../eval.yaml", "evaluation.set: must be a path inside"),
        ("  label: staging\n", "", "line 9: prompt.label: missing"),
        ("  top_k: 4\n", "  top_k: 4\n  top_k: 5\n", "line 6: retrieval.top_k: given twice"),
    ],
)
def test_each_bad_value_is_named(tmp_path: Path, old: str, new: str, problem: str) -> None:
    """One wrong value, one problem naming its field and line."""
    assert old in GOOD
    problems = _problems(tmp_path, GOOD.replace(old, new))
    assert len(problems) == 1
    assert problem in problems[0]
    assert problems[0].startswith("rag.yaml line ")


def test_a_missing_section_is_named(tmp_path: Path) -> None:
    """A section left out is reported (at the top of the file)."""
    text = GOOD.replace("prompt:\n  name: qa\n  label: staging\n", "")
    assert _problems(tmp_path, text) == ["rag.yaml line 1: prompt: missing"]


def test_not_yaml_or_not_a_mapping_is_reported_with_its_line(tmp_path: Path) -> None:
    """A syntax error names its line; a list or an empty file is not a configuration."""
    assert _problems(tmp_path, "chunking:\n  chunk_size: [1,\n") == [
        "rag.yaml line 3: not valid YAML: expected the node content, but found '<stream end>'"
    ]
    assert _problems(tmp_path, "- 1\n") == ["rag.yaml line 1: document: must be a mapping"]
    assert _problems(tmp_path, "") == ["rag.yaml: empty"]
    assert _problems(tmp_path, "chunking: 3\n" + GOOD.split("\n", 3)[3])[0] == (
        "rag.yaml line 1: chunking: must be a mapping"
    )


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    """The file that cannot be read is named."""
    with pytest.raises(RagConfigError, match=r"rag\.yaml: cannot be read"):
        load_rag_config(tmp_path / "rag.yaml")
