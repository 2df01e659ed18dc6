"""The extractive answerer: word-for-word quotes of the best sentences, numbered by passage."""

from __future__ import annotations

from app.chunking import Chunk, Hit
from app.evaluate import faithful
from app.extractive import (
    I_DONT_KNOW,
    MAX_QUOTES,
    best_sentence,
    extractive_answer,
    sentences,
    squeeze,
    terms,
)

ROLLBACK = """Undo a bad release quickly. Check the SLO first.

Roll the Deployment back to its previous ReplicaSet:

```sh
kubectl -n web rollout undo deployment/web
```

- Suspend Flux first, or it puts the release back.
- Resume it once the revert is merged.
"""
CERTS = "cert-manager renews certificates thirty days early. A failed renewal shows in events."


def hit(text: str, source: str = "a.md", score: float = 0.5, heading: str = "H") -> Hit:
    """Return a hit on a chunk of ``text``."""
    chunk = Chunk(
        id=source,
        source=source,
        heading=heading,
        text=text,
        start=0,
        end=len(text),
        document_sha256="0" * 64,
    )
    return Hit(chunk=chunk, score=score)


def test_sentences_are_exact_spans_without_headings_or_fences() -> None:
    """Paragraphs split at sentence ends, list items and code lines alone, markup left out."""
    text = (
        "# Title\n\nFirst one. Second\none wraps.\n\n```\ncode line\n```\n- item one\n| a | b |\n"
    )
    found = [text[start:end] for start, end in sentences(text)]
    assert found == ["First one.", "Second\none wraps.", "code line", "item one", "| a | b |"]


def test_terms_drop_small_words_and_fold_endings() -> None:
    """Question words carry no meaning; plurals and -ing forms meet their stems."""
    assert terms("How do I roll back the releases?") == terms("roll back release")
    assert len(terms("How do I roll back the releases?")) == 3
    assert terms("Rolling releases") == terms("roll released") == terms("rolls release")
    assert terms("classes") == terms("class")


def test_the_answer_quotes_the_best_sentences_with_their_passage_numbers() -> None:
    """Each quote is followed by the number of its passage, its rank among the hits."""
    hits = [hit(CERTS, "certs.md", 0.4), hit(ROLLBACK, "rollback.md", 0.3)]
    answer = extractive_answer("How do I roll back the deployment?", hits)
    assert answer.mode == "extractive"
    assert answer.text.startswith('"Roll the Deployment back to its previous ReplicaSet: … ')
    # A sentence ending with a colon brings the command it introduces.
    assert 'kubectl -n web rollout undo deployment/web" [2]' in answer.text
    (citation,) = answer.citations
    assert (citation.number, citation.source, citation.heading) == (2, "rollback.md", "H")
    assert citation.score == 0.3
    assert faithful(citation, hits)


def test_every_citation_quotes_its_passage_word_for_word() -> None:
    """The quoted words all appear, in order, in the cited passage (the evaluation's check)."""
    hits = [hit(ROLLBACK, "rollback.md"), hit(CERTS, "certs.md")]
    answer = extractive_answer("suspend flux release renewal events certificates", hits)
    assert [c.number for c in answer.citations] == [1, 2]
    assert all(faithful(citation, hits) for citation in answer.citations)
    assert len(answer.text.splitlines()) <= MAX_QUOTES
    assert "Suspend Flux first, or it puts the release back." in answer.citations[0].snippet


def test_a_sentence_is_never_quoted_twice() -> None:
    """A line brought by a colon is not quoted again on its own."""
    answer = extractive_answer(
        "previous replicaset kubectl rollout undo deployment", [hit(ROLLBACK)]
    )
    assert answer.text.count("kubectl -n web rollout undo") == 1


def test_nothing_in_common_quotes_the_best_passage_and_no_passage_is_i_dont_know() -> None:
    """The retriever already judged the passages relevant; with none there is no answer."""
    answer = extractive_answer("zebra", [hit(CERTS)])
    assert answer.text == '"cert-manager renews certificates thirty days early." [1]'
    empty = extractive_answer("anything", [])
    assert (empty.text, empty.mode, empty.citations) == (I_DONT_KNOW, "none", [])


def test_best_sentence_and_squeeze() -> None:
    """The snippet of an LLM citation is the passage's sentence closest to the question."""
    assert best_sentence("failed renewal", CERTS) == "A failed renewal shows in events."
    assert best_sentence("zebra", CERTS) is None
    assert squeeze("a  b\n c") == "a b c"
    assert squeeze("word " * 100, 22) == "word word word word"
