"""The quality gate: hit@5, MRR and citation faithfulness over an evaluation set.

The set (``evaluation/eval.yaml``) lists questions with the passages that answer them::

    version: 1
    questions:
      - question: How do I roll back a release that breaks the SLO?
        answers:
          - source: rollback.md      # relative to the docs folder
            contains: flux suspend   # a phrase the answering passage contains

A retrieved chunk *answers* when its source is one of the answers' and its text contains
that answer's phrase (case and runs of whitespace ignored). For each question the ten best
chunks above the relevance threshold are retrieved:

- **hit@5**: the share of questions with an answering chunk among the first five;
- **MRR**: the mean of 1/rank of the first answering chunk among the ten (0 if none);
- **faithfulness**: the first ``top_k`` chunks go to the answerer; a citation of its
  answer is *faithful* when its snippet, cut into fragments at each ellipsis "…", has
  every fragment (whitespace runs collapsed, ends stripped) appear, in order, in the text
  (whitespace collapsed) of a passage given to the answerer with the citation's source.
  Faithfulness is the share of faithful citations over all questions (1.0 when no answer
  cites anything: nothing was misquoted).

``python -m app.evaluate [--rag rag.yaml] [--docs docs] [--set evaluation/eval.yaml]
[--mode lexical|model] [--json]`` ingests the docs into a temporary embedded index,
evaluates with the extractive answerer and prints the figures (JSON with ``--json``);
it exits 2, one line per problem, when rag.yaml, the set or the docs cannot be used.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .chunking import Hit
from .embeddings import EmbeddingUnavailableError, embedder_for
from .eval_set import EvalQuestion, EvalSetError, ExpectedAnswer, load_eval_set
from .ingest import Ingestor
from .rag_config import EMBEDDING_MODES, RagConfig, RagConfigError, load_rag_config
from .retrieval import Retriever
from .settings import Settings, SettingsError
from .vectorstore import ChunkStore, StoreError

__all__ = [
    "EvalQuestion",
    "EvalResult",
    "EvalSetError",
    "ExpectedAnswer",
    "answers",
    "evaluate",
    "faithful",
    "load_eval_set",
    "main",
    "run",
]
HIT_AT = 5
MRR_DEPTH = 10


@dataclasses.dataclass
class EvalResult:
    """The figures of one evaluation, and what happened to each question."""

    hit_at_5: float
    mrr: float
    faithfulness: float
    questions: int
    mode: str
    per_question: list[dict[str, Any]]


class CitationLike(Protocol):
    """What faithfulness reads of a citation."""

    @property
    def source(self) -> str:
        """The cited document."""
        ...

    @property
    def snippet(self) -> str:
        """The quoted words."""
        ...


class AnswerLike(Protocol):
    """What faithfulness reads of an answer."""

    @property
    def citations(self) -> Sequence[CitationLike]:
        """The answer's citations."""
        ...


Answerer = Callable[[str, list[Hit]], AnswerLike]


def _flat(text: str) -> str:
    return " ".join(text.split())


def answers(hit: Hit, question: EvalQuestion) -> bool:
    """Tell whether a retrieved chunk is one of the passages answering the question."""
    text = _flat(hit.chunk.text).casefold()
    return any(
        hit.chunk.source == expected.source and _flat(expected.contains).casefold() in text
        for expected in question.answers
    )


def faithful(citation: CitationLike, passages: Sequence[Hit]) -> bool:
    """Tell whether a citation quotes a passage given with its source (see the module doc)."""
    fragments = [_flat(part) for part in citation.snippet.split("…")]
    fragments = [fragment for fragment in fragments if fragment]
    if not fragments:
        return False
    for hit in passages:
        if hit.chunk.source != citation.source:
            continue
        text, position = _flat(hit.chunk.text), 0
        for fragment in fragments:
            found = text.find(fragment, position)
            if found < 0:
                break
            position = found + len(fragment)
        else:
            return True
    return False


def evaluate(
    retriever: Retriever, answerer: Answerer, questions: Sequence[EvalQuestion]
) -> EvalResult:
    """Retrieve and answer every question; return hit@5, MRR and faithfulness."""
    hits_at, reciprocal, cited, faithful_count = 0, 0.0, 0, 0
    per_question: list[dict[str, Any]] = []
    for question in questions:
        hits = retriever.retrieve(question.question, k=MRR_DEPTH)
        rank = next((n for n, hit in enumerate(hits, start=1) if answers(hit, question)), None)
        given = hits[: retriever.config.top_k]
        answer = answerer(question.question, given)
        good = sum(faithful(citation, given) for citation in answer.citations)
        hits_at += rank is not None and rank <= HIT_AT
        reciprocal += 1.0 / rank if rank else 0.0
        cited += len(answer.citations)
        faithful_count += good
        per_question.append(
            {
                "question": question.question,
                "rank": rank,
                "retrieved": [f"{hit.chunk.source} > {hit.chunk.heading}" for hit in hits[:HIT_AT]],
                "citations": len(answer.citations),
                "faithful_citations": good,
            }
        )
    count = len(questions)
    return EvalResult(
        hit_at_5=round(hits_at / count, 4) if count else 0.0,
        mrr=round(reciprocal / count, 4) if count else 0.0,
        faithfulness=round(faithful_count / cited, 4) if cited else 1.0,
        questions=count,
        mode=retriever.mode,
        per_question=per_question,
    )


def run(
    rag_file: Path,
    docs: Path,
    eval_file: Path | None,
    mode: str | None,
    answerer: Answerer | None = None,
) -> tuple[dict[str, Any] | None, EvalResult | None, list[str]]:
    """Evaluate the docs in a temporary embedded index; return (figures, result, problems)."""
    problems: list[str] = []
    config: RagConfig | None = None
    try:
        config = load_rag_config(rag_file)
    except RagConfigError as error:
        problems.extend(error.problems)
    questions: list[EvalQuestion] = []
    set_file = eval_file or (config.eval_set if config else None)
    if set_file is not None:
        try:
            questions = load_eval_set(set_file)
        except EvalSetError as error:
            problems.extend(error.problems)
    if not docs.is_dir():
        problems.append(f"{docs}: not a folder of documents")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        problems.append(str(error))
        settings = Settings()
    mode = mode or settings.embedding_mode
    if problems or config is None:
        return None, None, problems
    if answerer is None:
        from .extractive import extractive_answer  # the generation side, loaded only here

        answerer = extractive_answer
    with tempfile.TemporaryDirectory(prefix="rag-eval-") as folder:
        settings = dataclasses.replace(
            settings, data_dir=Path(folder), qdrant_url="", embedding_mode=mode
        )
        try:
            store = ChunkStore(settings, embedder_for(mode))
        except (EmbeddingUnavailableError, StoreError) as error:
            return None, None, [str(error)]
        try:
            report = Ingestor(store, config, settings.max_upload_bytes).ingest_folder(docs)
            # Each error starts with the file's path in the folder: prefix the folder.
            problems.extend(f"{docs}/{error['error']}" for error in report.errors)
            indexed = store.sources()
            for question in questions:
                for expected in question.answers:
                    if expected.source not in indexed:
                        problems.append(
                            f"{set_file.name if set_file else 'eval set'} line {expected.line}: "
                            f"source: {expected.source} is not a document of {docs}"
                        )
            if problems:
                return None, None, problems
            result = evaluate(Retriever(store, config), answerer, questions)
            figures = {
                "hit_at_5": result.hit_at_5,
                "mrr": result.mrr,
                "faithfulness": result.faithfulness,
                "questions": result.questions,
                "mode": result.mode,
                "embedding": store.embedder.description,
                "chunks": store.count(),
            }
        finally:
            store.close()
    return figures, result, []


def main(argv: Sequence[str] | None = None) -> int:
    """Run the evaluation from the command line; 0 with the figures, 2 on a bad input."""
    parser = argparse.ArgumentParser(
        prog="python -m app.evaluate", description="Evaluate retrieval and citations."
    )
    parser.add_argument("--rag", type=Path, default=Path("rag.yaml"), help="rag.yaml to use")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="documents folder")
    parser.add_argument("--set", type=Path, default=None, help="evaluation set (rag.yaml's)")
    parser.add_argument("--mode", choices=EMBEDDING_MODES, default=None, help="embedding")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures, result, problems = run(args.rag, args.docs, args.set, args.mode)
    if problems or figures is None or result is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    print(
        f"hit@5 {figures['hit_at_5']:.3f}  MRR {figures['mrr']:.3f}  "
        f"faithfulness {figures['faithfulness']:.3f}  ({figures['questions']} questions, "
        f"{figures['chunks']} chunks, {figures['embedding']})"
    )
    for entry in result.per_question:
        if entry["rank"] is None or entry["rank"] > HIT_AT:
            print(f"  missed (rank {entry['rank']}): {entry['question']}")
            for where in entry["retrieved"]:
                print(f"      got {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
