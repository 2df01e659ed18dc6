"""The quality gate: hit@5, MRR and faithfulness, the evaluation set's checks, and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from app.chunking import Chunk, Hit
from app.evaluate import (
    EvalQuestion,
    EvalSetError,
    ExpectedAnswer,
    answers,
    evaluate,
    faithful,
    load_eval_set,
    main,
)
from app.ingest import Ingestor
from app.rag_config import RagConfig
from app.retrieval import Retriever
from app.vectorstore import ChunkStore

EVAL_SET = """version: 1
questions:
  - question: How do I suspend the Flux kustomization?
    answers:
      - source: rollback.md
        contains: flux suspend kustomization
  - question: When is the on-call handover?
    answers:
      - source: notes/oncall.txt
        contains: every   MONDAY
  - question: How do I rotate the database password?
    answers:
      - source: certificates.md
        contains: vault rotate
"""

RAG_YAML = """chunking: {chunk_size: 300, chunk_overlap: 40}
retrieval:
  top_k: 3
  min_score: {lexical: 0.05, model: 0.2}
prompt: {name: qa, label: production}
evaluation: {set: eval.yaml, tolerance: 0.02}
"""


def _hit(source: str, text: str, score: float = 0.5) -> Hit:
    return Hit(Chunk(f"{source}:{text}", source, "", text, 0, len(text), "sha"), score)


@dataclasses.dataclass
class FakeCitation:
    """A citation as the answerers make them (only what faithfulness reads)."""

    source: str
    snippet: str


@dataclasses.dataclass
class FakeAnswer:
    """An answer with citations."""

    citations: list[FakeCitation]


class FakeRetriever:
    """Returns canned hits per question, as the retriever would (best first)."""

    mode = "lexical"

    def __init__(self, hits: dict[str, list[Hit]], config: RagConfig) -> None:
        self.hits, self.config = hits, config

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        """Return the canned hits, at most k."""
        return self.hits[question][: k or self.config.top_k]


def test_hit_at_5_and_mrr_follow_the_first_answering_rank(rag_config: RagConfig) -> None:
    """Ranks 1, 3, 7 and none: hit@5 counts two, MRR adds 1, 1/3 and 1/7."""
    noise = [_hit("other.md", f"unrelated {n}") for n in range(10)]
    answer = _hit("a.md", "The Answer is here")
    ranked = {"q1": 0, "q3": 2, "q7": 6, "none": None}
    hits = {
        name: [*noise[:rank], answer, *noise[rank:]] if rank is not None else noise
        for name, rank in ranked.items()
    }
    questions = [EvalQuestion(name, (ExpectedAnswer("a.md", "answer IS"),)) for name in ranked]
    retriever = FakeRetriever(hits, rag_config)
    result = evaluate(retriever, lambda _q, _h: FakeAnswer([]), questions)  # type: ignore[arg-type]
    assert result.hit_at_5 == 0.5
    assert result.mrr == round((1 + 1 / 3 + 1 / 7) / 4, 4)
    assert result.faithfulness == 1.0  # nothing cited, nothing misquoted
    assert [entry["rank"] for entry in result.per_question] == [1, 3, 7, None]
    assert (result.questions, result.mode) == (4, "lexical")


def test_an_answering_chunk_needs_its_source_and_phrase() -> None:
    """Case and whitespace runs are ignored; another source does not answer."""
    question = EvalQuestion("q", (ExpectedAnswer("a.md", "flux  Suspend"),))
    assert answers(_hit("a.md", "Run FLUX\nsuspend now"), question)
    assert not answers(_hit("b.md", "Run flux suspend now"), question)
    assert not answers(_hit("a.md", "Run flux resume now"), question)


@pytest.mark.parametrize(
    ("source", "snippet", "expected"),
    [
        ("a.md", "Suspend the kustomization.", True),
        ("a.md", "Suspend   the\nkustomization.", True),  # whitespace runs are one space
        ("a.md", "Suspend the … then revert it", True),  # fragments in order
        ("a.md", "…the kustomization…", True),
        ("a.md", "then revert it … Suspend the", False),  # out of order
        ("a.md", "Suspend the deployment.", False),  # words not in the passage
        ("b.md", "Suspend the kustomization.", False),  # another document
        ("a.md", "suspend the kustomization.", False),  # quotes are exact
        ("a.md", " … ", False),  # nothing quoted
    ],
)
def test_a_citation_is_faithful_when_its_passage_contains_the_quote(
    source: str, snippet: str, expected: bool
) -> None:
    """The quoted fragments appear, in order, in a given passage of the cited document."""
    passages = [
        _hit("b.md", "Other text"),
        _hit("a.md", "Suspend the kustomization.\nthen revert it"),
    ]
    assert faithful(FakeCitation(source, snippet), passages) is expected


def test_faithfulness_is_over_the_passages_given_to_the_answerer(rag_config: RagConfig) -> None:
    """Only the first top_k hits are given; quoting a later one is not faithful."""
    hits = [_hit("a.md", f"passage {n} text") for n in range(6)]
    questions = [EvalQuestion("q", (ExpectedAnswer("a.md", "passage 0"),))]
    seen: list[int] = []

    def answerer(_question: str, given: list[Hit]) -> FakeAnswer:
        seen.append(len(given))
        return FakeAnswer([FakeCitation("a.md", "passage 1"), FakeCitation("a.md", "passage 5")])

    result = evaluate(FakeRetriever({"q": hits}, rag_config), answerer, questions)  # type: ignore[arg-type]
    assert seen == [rag_config.top_k]
    assert result.faithfulness == 0.5
    assert result.per_question[0]["faithful_citations"] == 1


def test_the_extractive_answerer_over_real_retrieval_is_faithful(
    lexical_store: ChunkStore, rag_config: RagConfig, docs_folder: Path, tmp_path: Path
) -> None:
    """End to end on the test documents: two of three answered at rank one, quotes exact."""
    from app.extractive import extractive_answer

    Ingestor(lexical_store, rag_config, max_bytes=100_000).ingest_folder(docs_folder)
    (tmp_path / "eval.yaml").write_text(EVAL_SET)
    questions = load_eval_set(tmp_path / "eval.yaml")
    result = evaluate(Retriever(lexical_store, rag_config), extractive_answer, questions)
    assert (result.hit_at_5, result.mrr, result.faithfulness) == (0.6667, 0.6667, 1.0)
    assert sum(entry["citations"] for entry in result.per_question) >= 2


def test_an_eval_set_is_read_with_its_answers(tmp_path: Path) -> None:
    """Questions, their answers and their lines."""
    (tmp_path / "eval.yaml").write_text(EVAL_SET)
    questions = load_eval_set(tmp_path / "eval.yaml")
    assert questions[0].question == "How do I suspend the Flux kustomization?"
    assert questions[1].answers == (ExpectedAnswer("notes/oncall.txt", "every   MONDAY", 9),)
    assert [question.line for question in questions] == [3, 7, 11]


def test_every_problem_of_an_eval_set_is_named_with_its_line(tmp_path: Path) -> None:
    """Missing, empty, unknown and repeated entries: one line each."""
    text = """version: 2
questions:
  - question: ""
    answers: []
  - question: Twice?
    answers:
      - {source: a.md, contains: root}
  - question: Bad answer
    answers:
      - source: /etc/passwd
        contains: x
        phrase: x
  - just a string
  - question: Twice?
    answers: [{source: b.md, contains: y}]
"""
    (tmp_path / "eval.yaml").write_text(text)
    with pytest.raises(EvalSetError) as error:
        load_eval_set(tmp_path / "eval.yaml")
    assert error.value.problems == [
        "eval.yaml line 1: version: must be 1",
        "eval.yaml line 3: questions[0].question: must be non-empty text, got ''",
        "eval.yaml line 4: questions[0].answers: must be a non-empty list",
        "eval.yaml line 12: questions[2].answers[0].phrase: unknown field",
        "eval.yaml line 10: questions[2].answers[0].source: must be relative to docs",
        "eval.yaml line 13: questions[3]: must be a mapping",
        "eval.yaml line 14: questions[4]: asked twice",
    ]


def test_an_eval_set_without_questions_is_refused(tmp_path: Path) -> None:
    """An empty list of questions cannot gate anything."""
    (tmp_path / "eval.yaml").write_text("version: 1\nquestions: []\n")
    with pytest.raises(EvalSetError, match="line 2: questions: must be a non-empty list"):
        load_eval_set(tmp_path / "eval.yaml")


def test_the_command_line_prints_the_figures(
    tmp_path: Path, docs_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0 and a JSON object with the figures, the mode and the index's size."""
    (tmp_path / "rag.yaml").write_text(RAG_YAML)
    (tmp_path / "eval.yaml").write_text(EVAL_SET)
    code = main(
        [
            "--rag",
            str(tmp_path / "rag.yaml"),
            "--docs",
            str(docs_folder),
            "--mode",
            "lexical",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    figures = json.loads(out)
    assert figures == {
        "hit_at_5": 0.6667,
        "mrr": 0.6667,
        "faithfulness": 1.0,
        "questions": 3,
        "mode": "lexical",
        "embedding": "lexical (HashingVectorizer, 2^18 features)",
        "chunks": figures["chunks"],
    }
    assert figures["chunks"] >= 4
    assert (
        main(["--rag", str(tmp_path / "rag.yaml"), "--docs", str(docs_folder), "--mode", "lexical"])
        == 0
    )
    text = capsys.readouterr().out
    assert text.startswith("hit@5 0.667  MRR 0.667  faithfulness 1.000")
    assert "missed (rank None): How do I rotate the database password?" in text


def test_the_command_line_exits_2_listing_every_problem(
    tmp_path: Path, docs_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad rag.yaml and a missing docs folder: both reported, one line each."""
    (tmp_path / "rag.yaml").write_text(RAG_YAML.replace("top_k: 3", "top_k: 99"))
    (tmp_path / "eval.yaml").write_text(EVAL_SET)
    code = main(
        [
            "--rag",
            str(tmp_path / "rag.yaml"),
            "--docs",
            str(tmp_path / "nowhere"),
            "--set",
            str(tmp_path / "eval.yaml"),
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "rag.yaml line 3: retrieval.top_k: must be between 1 and 50, got 99",
        f"{tmp_path / 'nowhere'}: not a folder of documents",
    ]


def test_the_command_line_refuses_answers_in_documents_that_do_not_exist(
    tmp_path: Path, docs_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An eval set naming a missing document (or a document that fails) cannot be evaluated."""
    (tmp_path / "rag.yaml").write_text(RAG_YAML)
    (tmp_path / "eval.yaml").write_text(
        EVAL_SET.replace("source: certificates.md", "source: certs.md")
    )
    (docs_folder / "broken.md").write_bytes(b"\xff broken")
    code = main(
        ["--rag", str(tmp_path / "rag.yaml"), "--docs", str(docs_folder), "--mode", "lexical"]
    )
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{docs_folder}/broken.md: not UTF-8 text (invalid byte at offset 0)",
        f"eval.yaml line 13: source: certs.md is not a document of {docs_folder}",
    ]
