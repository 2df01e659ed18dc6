"""Serving git repositories read-only over git's smart HTTP protocol, with ``git http-backend``.

Git's own CGI program answers the two requests of a fetch or clone, for protocol v0 and v2:
``GET <repo>/info/refs?service=git-upload-pack`` (the ref advertisement) and
``POST <repo>/git-upload-pack`` (the negotiation and the pack). It runs as a child process
with a scrubbed environment, no user or system git configuration, pushes disabled
(``http.receivepack=false``) and the dumb protocol's file downloads off; its output is
streamed back as it comes, under one deadline for the whole request, and the process group
is stopped when the deadline passes or the client goes away.

The caller decides which repository may be served (a folder it vetted) and refuses
everything but upload-pack before calling :func:`upload_pack`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import time
from asyncio.subprocess import Process
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from portal.integrations.processes import die_with_parent, scrubbed_env

logger = logging.getLogger(__name__)

UPLOAD_PACK = "git-upload-pack"
RECEIVE_PACK = "git-receive-pack"
REQUEST_MEDIA_TYPE = f"application/x-{UPLOAD_PACK}-request"
DEFAULT_SECONDS = 60.0
CHUNK = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024
STDERR_KEPT = 4096
EXIT_GRACE_SECONDS = 5.0
# Headers of git's answer a client needs; the rest of a CGI header block is dropped.
_PASSED_HEADERS = frozenset({"content-type", "cache-control", "expires", "pragma"})
# `Git-Protocol: version=2` (keys and values of git's own vocabulary, `:`-separated).
_PROTOCOL = re.compile(r"^[A-Za-z0-9=.,:_-]{1,128}$")
_GIT_CONFIG = {
    "http.receivepack": "false",
    "http.getanyfile": "false",
    "http.uploadpack": "true",
    "uploadpack.allowfilter": "false",
}


class GitHttpError(Exception):
    """The request cannot be answered; ``status`` is the HTTP status to refuse it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class UploadPackRequest:
    """One smart-HTTP request for upload-pack on a repository the caller vetted."""

    repository: Path  # a bare repository
    advertisement: bool  # GET info/refs (True) or POST git-upload-pack (False)
    body: bytes = b""
    content_encoding: str | None = None  # "gzip": git's clients compress larger requests
    protocol: str | None = None  # the Git-Protocol header ("version=2")


@dataclasses.dataclass
class GitHttpResponse:
    """Git's answer: the status and headers it gave, and its body as it streams."""

    status: int
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]


def _environment(request: UploadPackRequest) -> dict[str, str]:
    path = "info/refs" if request.advertisement else UPLOAD_PACK
    cgi = {
        "GIT_PROJECT_ROOT": str(request.repository.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{request.repository.name}/{path}",
        "REQUEST_METHOD": "GET" if request.advertisement else "POST",
        "QUERY_STRING": f"service={UPLOAD_PACK}" if request.advertisement else "",
        "CONTENT_TYPE": "" if request.advertisement else REQUEST_MEDIA_TYPE,
        "CONTENT_LENGTH": "" if request.advertisement else str(len(request.body)),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,  # no user configuration reaches the server side
        "GIT_CONFIG_COUNT": str(len(_GIT_CONFIG)),
    }
    for index, (key, value) in enumerate(_GIT_CONFIG.items()):
        cgi[f"GIT_CONFIG_KEY_{index}"] = key
        cgi[f"GIT_CONFIG_VALUE_{index}"] = value
    if request.content_encoding:
        cgi["HTTP_CONTENT_ENCODING"] = request.content_encoding
    if request.protocol:
        cgi["GIT_PROTOCOL"] = request.protocol
    env = scrubbed_env() | cgi
    # Inherited CGI or git variables would change what http-backend serves or where it looks.
    for name in ("GIT_DIR", "GIT_NAMESPACE", "REMOTE_USER", "HTTP_GIT_PROTOCOL"):
        env.pop(name, None)
    return env


def check_request_headers(content_encoding: str | None, protocol: str | None) -> None:
    """Refuse (400) encodings git does not send and malformed ``Git-Protocol`` values."""
    if content_encoding not in (None, "", "gzip", "x-gzip"):
        raise GitHttpError(400, f"Content-Encoding {content_encoding[:40]!r} is not supported")
    if protocol and not _PROTOCOL.fullmatch(protocol):
        raise GitHttpError(400, "the Git-Protocol header is malformed")


def _stop(process: Process) -> None:
    """Stop git and what it started (upload-pack, pack-objects): the whole process group."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _parse_headers(block: bytes) -> tuple[int, list[tuple[str, str]]]:
    status, headers = 200, []
    for raw in block.decode("latin-1").split("\n"):
        name, _, value = raw.rstrip("\r").partition(":")
        name, value = name.strip(), value.strip()
        if name.lower() == "status":
            code = value.split(" ", 1)[0]
            status = int(code) if code.isdigit() and len(code) == 3 else 502
        elif name.lower() in _PASSED_HEADERS:
            headers.append((name, value))
    return status, headers


_HEADER_END = re.compile(rb"\r?\n\r?\n")


async def _read_headers(
    stdout: asyncio.StreamReader, deadline: float
) -> tuple[bytes, bytes] | None:
    """Return the CGI header block and the body bytes read with it.

    None when git ended before the block did, or wrote a block too long to be one.
    """
    block = b""
    while (end := _HEADER_END.search(block)) is None:
        if len(block) > MAX_HEADER_BYTES:
            return None
        chunk = await asyncio.wait_for(stdout.read(CHUNK), max(0.0, deadline - time.monotonic()))
        if not chunk:
            return None
        block += chunk
    return block[: end.start()], block[end.end() :]


async def _drain(stream: asyncio.StreamReader) -> bytes:
    """Read ``stream`` to its end (so git never blocks on it); keep its first bytes."""
    kept = b""
    while chunk := await stream.read(CHUNK):
        kept = (kept + chunk)[:STDERR_KEPT]
    return kept


class _Run:
    """One running ``git http-backend``: its input writer, its stderr, its hard deadline."""

    def __init__(self, process: Process, body: bytes, deadline: float) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        self.process, self.stdout, self.deadline = process, process.stdout, deadline
        self.writer = asyncio.ensure_future(_write(process.stdin, body))
        self.errors = asyncio.ensure_future(_drain(process.stderr))
        # Stopped at the deadline even if its answer is never read (a client gone early).
        delay = max(0.0, deadline - time.monotonic()) + EXIT_GRACE_SECONDS
        self.killer = asyncio.get_running_loop().call_later(delay, _stop, process)

    def remaining(self) -> float:
        """Return the seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    async def body(self, first: bytes) -> AsyncIterator[bytes]:
        """Stream git's answer after its headers, until it ends or the deadline passes."""
        problem = ""
        try:
            if first:
                yield first
            while True:
                try:
                    chunk = await asyncio.wait_for(self.stdout.read(CHUNK), self.remaining())
                except TimeoutError:
                    problem = "timed out while sending"  # the client sees a cut-off pack
                    break
                if not chunk:
                    break
                yield chunk
        finally:
            await self.finish(problem)

    async def finish(self, problem: str) -> None:
        """Stop git if it still runs, reap it, and log what went wrong."""
        self.killer.cancel()
        if problem or not self.stdout.at_eof():
            _stop(self.process)
        self.writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self.writer
        try:
            returncode = await asyncio.wait_for(self.process.wait(), EXIT_GRACE_SECONDS)
        except TimeoutError:  # it closed its output but lingers
            _stop(self.process)
            returncode = await self.process.wait()
        try:
            stderr = await asyncio.wait_for(self.errors, EXIT_GRACE_SECONDS)
        except TimeoutError:  # a grandchild still holds stderr open
            stderr = b""
        if problem or returncode:
            message = stderr.decode("utf-8", "replace").strip()
            logger.warning(
                "git http-backend %s (exit %s): %s", problem or "failed", returncode, message
            )


async def upload_pack(
    request: UploadPackRequest, *, seconds: float = DEFAULT_SECONDS, git: str = "git"
) -> GitHttpResponse:
    """Run ``git http-backend`` for ``request``; return its status, headers and streamed body.

    ``seconds`` bounds the whole request, the streamed body included. Raises
    :class:`GitHttpError`: 503 when git cannot be started or does not answer in time, 400
    when git refused the request before answering it.
    """
    deadline = time.monotonic() + seconds
    command: Sequence[str] = (git, "http-backend")
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_environment(request),
            cwd=request.repository,
            start_new_session=True,  # its own group, so _stop reaches upload-pack too
            preexec_fn=die_with_parent(),
        )
    except OSError as exc:
        logger.warning("cannot start git http-backend: %s", exc)
        raise GitHttpError(503, "the portal cannot run git right now") from None
    run = _Run(process, request.body, deadline)
    try:
        answer = await _read_headers(run.stdout, deadline)
    except TimeoutError:
        await run.finish("timed out before answering")
        raise GitHttpError(503, f"git did not answer within {seconds:g} s") from None
    except BaseException:
        await run.finish("stopped before answering")
        raise
    if answer is None:
        await run.finish("ended without an answer")
        raise GitHttpError(400, "git could not answer this request")
    head, first = answer
    status, headers = _parse_headers(head)
    if status >= 500:
        # http-backend answers 500 for whatever made it die, which for a vetted repository
        # is the request it was sent (a corrupt body, an unknown capability).
        await run.finish(f"answered {status}")
        raise GitHttpError(400, "git could not process this request")
    return GitHttpResponse(status, headers, run.body(first))


async def _write(stdin: asyncio.StreamWriter, body: bytes) -> None:
    # Written while the answer is read: git may answer before it has read everything.
    with contextlib.suppress(ConnectionError):
        if body:
            stdin.write(body)
            await stdin.drain()
        stdin.close()
