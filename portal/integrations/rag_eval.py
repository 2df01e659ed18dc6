"""A RAG service's own evaluator (``python -m app.evaluate --json``), run for the review check.

The generated RAG service ships its evaluation (``app/evaluate.py``): it ingests the
service's ``docs/`` into a temporary index, asks ``evaluation/eval.yaml``'s questions and
prints hit@5, MRR and citation faithfulness as one JSON object. The portal runs it with a
Python whose environment holds the service's locked dependencies (``make tools`` builds
``.tools/rag-eval`` from the template's ``requirements.lock``), never the portal's own.

The code that runs is the caller's choice (``code_dir``'s ``app/``), the data the service
folder's: both are copied into a temporary folder first (regular files only: a symbolic
link could point anywhere on the portal's machine), so the evaluator never sees the
portal's worktree. It gets a minimal environment (no proxies, no inherited secrets,
Hugging Face offline), a timeout, and dies with the portal. Anything but a well-formed
report is a :class:`RagEvalError`: an evaluator that could not vouch for its figures
never passes. Figures are remembered by the digest of the copy they were measured on
(code, documents, settings and the Python): main's folder is measured again for every
change on the same base otherwise, a few seconds each.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from portal.integrations.processes import run_tool

RAG_EVAL_TIMEOUT_SECONDS = 300.0
# `make tools` builds it; relative to the portal's checkout (see portal.config).
MAKE_TOOLS_PYTHON = Path(".tools/rag-eval/bin/python")
INSTALL_HINT = "run `make tools`, or set PORTAL_RAG_EVAL_PYTHON"
# The evaluator's exit status for files it refuses (a bad rag.yaml, eval set or document).
EXIT_BAD_FILES = 2
# A report is a few hundred bytes; anything this large is not one.
MAX_OUTPUT_CHARS = 1 << 20
# Figures kept per digest of an evaluated copy: a few hundred bytes each.
REMEMBERED = 64
APP_PACKAGE = "app"
FIGURES = ("hit_at_5", "mrr", "faithfulness")


class RagEvalError(RuntimeError):
    """The evaluator could not run, refused the files, or printed no valid report.

    ``problems`` are the evaluator's own lines (for a refused file, each names it).
    """

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class RagFigures:
    """What one evaluation measured: the three figures (0 to 1) and what they were measured on."""

    hit_at_5: float
    mrr: float
    faithfulness: float
    questions: int
    mode: str
    embedding: str
    chunks: int


class RagEvaluator(Protocol):
    """Evaluates a RAG service folder's retrieval and answers on its own evaluation set."""

    def evaluate(self, service_dir: Path, code_dir: Path) -> RagFigures:
        """Evaluate ``service_dir``'s documents, prompts and settings with ``code_dir/app``.

        Raises :class:`RagEvalError` when no trustworthy figures come out.
        """
        ...


def _number(report: dict[str, Any], key: str) -> float:
    value = report.get(key)
    # bool is an int in Python; `true` is no figure.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RagEvalError(f"the evaluator's report has no number {key} (got {value!r})")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise RagEvalError(f"the evaluator's report gives {key} = {value!r}, not within 0..1")
    return float(value)


def _count(report: dict[str, Any], key: str, least: int) -> int:
    value = report.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise RagEvalError(
            f"the evaluator's report has no whole number {key} >= {least} (got {value!r})"
        )
    return value


def _text(report: dict[str, Any], key: str) -> str:
    value = report.get(key)
    if not isinstance(value, str) or not value.strip():
        raise RagEvalError(f"the evaluator's report has no text {key} (got {value!r})")
    return value


def parse_report(stdout: str) -> RagFigures:
    """Read the evaluator's ``--json`` output: exactly one JSON object, every field checked.

    Figures must be numbers from 0 to 1, ``questions`` at least 1 (figures over no
    question mean nothing), ``chunks`` a count, ``mode`` and ``embedding`` texts. Other
    keys (per-question details) are allowed and ignored.
    """
    if len(stdout) > MAX_OUTPUT_CHARS:
        raise RagEvalError(f"the evaluator printed {len(stdout)} characters, not a report")
    try:
        report = json.loads(stdout, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError) as error:
        shown = stdout.strip()[:200]
        raise RagEvalError(
            f"the evaluator did not print a JSON report ({error}): {shown!r}"
        ) from None
    if not isinstance(report, dict):
        raise RagEvalError(f"the evaluator's report is a {type(report).__name__}, not an object")
    return RagFigures(
        hit_at_5=_number(report, "hit_at_5"),
        mrr=_number(report, "mrr"),
        faithfulness=_number(report, "faithfulness"),
        questions=_count(report, "questions", 1),
        mode=_text(report, "mode"),
        embedding=_text(report, "embedding"),
        chunks=_count(report, "chunks", 0),
    )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def evaluator_env(scratch: Path) -> dict[str, str]:
    """Return the evaluator's whole environment: built here, nothing inherited.

    No proxy and no credential reaches it (the evaluation reads local files only), HOME
    and TMPDIR are the scratch folder, and Hugging Face libraries stay offline (the
    model mode's weights come installed in a package, never downloaded).
    """
    return {
        "PATH": os.defpath,
        "HOME": str(scratch / "home"),
        "TMPDIR": str(scratch / "tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OTEL_SDK_DISABLED": "true",
    }


def copy_regular_files(source: Path, dest: Path, *, skip_top: Iterable[str] = ()) -> int:
    """Copy the regular files of ``source`` into ``dest``; return how many.

    Symbolic links (to files or folders: the walk does not follow them) and special files
    are left out: followed, they could bring any file of the portal's machine into the
    evaluator's reach. Top-level
    entries named in ``skip_top`` are left out too.
    """
    skipped = set(skip_top)
    copied = 0
    for folder, dirs, files in os.walk(source, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(source)
        if relative == Path("."):
            dirs[:] = [name for name in dirs if name not in skipped]
            files = [name for name in files if name not in skipped]
        target = dest / relative
        target.mkdir(parents=True, exist_ok=True)
        for name in files:
            path = here / name
            if path.is_symlink() or not path.is_file():
                continue
            shutil.copyfile(path, target / name)
            copied += 1
    return copied


def tree_digest(folder: Path) -> str:
    """Return the sha256 of a folder's regular files: their relative paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _stderr_lines(stderr: str, limit: int = 20) -> list[str]:
    return [line.strip() for line in stderr.strip().splitlines() if line.strip()][-limit:]


class RagEvalCli:
    """The real evaluator: ``<python> -m app.evaluate --json`` in a scratch copy of the service."""

    def __init__(self, python: Path, timeout: float = RAG_EVAL_TIMEOUT_SECONDS) -> None:
        """Run with ``python`` (absolute: the evaluator's folder is not the portal's)."""
        self.python = python.absolute()
        self.timeout = timeout
        # Check workers are threads: the memo is shared and bounded (least recently used).
        self._remembered: OrderedDict[str, RagFigures] = OrderedDict()
        self._lock = threading.Lock()

    def command(self) -> list[str]:
        """Return the command line: no PYTHON* variables (-E), no user site (-s), no .pyc (-B)."""
        return [str(self.python), "-E", "-s", "-B", "-m", f"{APP_PACKAGE}.evaluate", "--json"]

    def evaluate(self, service_dir: Path, code_dir: Path) -> RagFigures:
        """Copy the folders into a scratch directory, run the evaluator there, read its report."""
        if not (code_dir / APP_PACKAGE / "evaluate.py").is_file():
            raise RagEvalError(f"{APP_PACKAGE}/evaluate.py is missing: no evaluator to run")
        with tempfile.TemporaryDirectory(prefix="rag-eval-") as tmp:
            scratch = Path(tmp)
            work = scratch / "service"
            copy_regular_files(service_dir, work, skip_top=(APP_PACKAGE,))
            copy_regular_files(code_dir / APP_PACKAGE, work / APP_PACKAGE)
            for folder in ("home", "tmp"):
                (scratch / folder).mkdir()
            key = f"{self.python}\0{tree_digest(work)}"
            with self._lock:
                if key in self._remembered:
                    self._remembered.move_to_end(key)
                    return self._remembered[key]
            try:
                done = run_tool(
                    self.command(), env=evaluator_env(scratch), cwd=work, timeout=self.timeout
                )
            except subprocess.TimeoutExpired:
                raise RagEvalError(
                    f"the evaluator did not finish within {self.timeout:g} s "
                    "(PORTAL_RAG_EVAL_TIMEOUT_SECONDS)"
                ) from None
            except OSError as error:
                raise RagEvalError(
                    f"the evaluator could not start {self.python}: {error} ({INSTALL_HINT})"
                ) from None
        problems = _stderr_lines(done.stderr)
        if done.returncode == EXIT_BAD_FILES:
            first = problems[0] if problems else "no message"
            raise RagEvalError(f"the evaluator refused the service's files: {first}", problems)
        if done.returncode != 0:
            last = problems[-1] if problems else "no message"
            raise RagEvalError(f"the evaluator exited with {done.returncode}: {last}", problems)
        figures = parse_report(done.stdout)  # refusals raise above: only figures are kept
        with self._lock:
            self._remembered[key] = figures
            while len(self._remembered) > REMEMBERED:
                self._remembered.popitem(last=False)
        return figures


class MissingRagEvaluator:
    """Stands in for an evaluator that is not installed: the check says so, as an error."""

    def __init__(self, configured: Path | None) -> None:
        self.configured = configured

    def evaluate(self, service_dir: Path, code_dir: Path) -> RagFigures:
        """Fail the way a missing tool fails."""
        where = (
            f"{self.configured} is not an executable Python"
            if self.configured
            else f"no Python at {MAKE_TOOLS_PYTHON} of the portal's checkout"
        )
        raise RagEvalError(f"the RAG evaluator is not installed: {where} ({INSTALL_HINT})")


def rag_evaluator(python: Path | None, timeout: float = RAG_EVAL_TIMEOUT_SECONDS) -> RagEvaluator:
    """Return the evaluator of an executable ``python``, else one saying what is missing."""
    if python is not None and python.is_file() and os.access(python, os.X_OK):
        return RagEvalCli(python, timeout)
    return MissingRagEvaluator(python)


@dataclass
class FakeRagEvaluator:
    """A fake for unit tests: answers each service folder from ``answer`` and records the calls.

    ``answer`` returns figures or raises :class:`RagEvalError`; ``calls`` holds each
    ``(service_dir, code_dir)`` in order.
    """

    answer: Callable[[Path], RagFigures]
    calls: list[tuple[Path, Path]] = field(default_factory=list)

    def evaluate(self, service_dir: Path, code_dir: Path) -> RagFigures:
        """Record the call and return the canned answer for ``service_dir``."""
        self.calls.append((service_dir, code_dir))
        return self.answer(service_dir)
