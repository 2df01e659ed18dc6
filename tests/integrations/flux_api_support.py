"""A stand-in Kubernetes API server on loopback answering Flux Kustomization reads.

It serves the recorded bodies of ``tests/data/kubernetes/`` over real HTTP, chosen by the
bearer token a request carries (one token per kubeconfig context, so one server plays
several clusters), and records every request it gets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import yaml

from tests.conftest import REPO
from tests.loopback_http import serving

DATA = REPO / "tests" / "data" / "kubernetes"
KUSTOMIZATIONS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/"
APPLIED_SHA = "4f2b9c1e7d3a5b8c0e1f2a3b4c5d6e7f8a9b0c1d"  # in the recorded ready and failed bodies
ATTEMPTED_SHA = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"


@dataclass(frozen=True)
class Answer:
    """What the server answers: an HTTP status, a recorded body, after ``delay`` seconds."""

    status: int
    body: str
    delay: float = 0.0


READY_DEV = Answer(200, "kustomization-ready-dev.json")
FAILED_PROD = Answer(200, "kustomization-failed-prod.json")
PROGRESSING = Answer(200, "kustomization-progressing-staging.json")
FORBIDDEN = Answer(403, "status-forbidden.json")
NOT_FOUND = Answer(404, "status-not-found.json")
UNAUTHORIZED = Answer(401, "status-unauthorized.json")


@dataclass
class FakeKubeApi:
    """Answers by token, then by Kustomization name; anything else is the recorded 404."""

    answers: Mapping[str, Mapping[str, Answer]]
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, authorization: str) -> Answer:
        with self.lock:
            self.requests.append((path, authorization))
        token = authorization.removeprefix("Bearer ")
        if token not in self.answers:
            return UNAUTHORIZED
        if not path.startswith(KUSTOMIZATIONS):
            return NOT_FOUND
        return self.answers[token].get(path.removeprefix(KUSTOMIZATIONS), NOT_FOUND)


@contextmanager
def kube_api(answers: Mapping[str, Mapping[str, Answer]]) -> Iterator[tuple[FakeKubeApi, int]]:
    """Serve ``answers`` (token -> name -> answer) on loopback; yield the API and its port."""
    api = FakeKubeApi(answers)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = api.answer(self.path, self.headers.get("Authorization", ""))
            if found.delay:
                time.sleep(found.delay)
            body = (DATA / found.body).read_bytes()
            try:
                self.send_response(found.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, as the slow-answer test wants

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler, "fake-kube-api") as port:
        yield api, port


def write_kubeconfig(
    path: Path, port: int, tokens: Mapping[str, str], current: str | None = None
) -> Path:
    """Write a kubeconfig with one context per ``tokens`` entry (context -> bearer token)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "loopback", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [
            {"name": f"{name}-user", "user": {"token": token}} for name, token in tokens.items()
        ],
        "contexts": [
            {"name": name, "context": {"cluster": "loopback", "user": f"{name}-user"}}
            for name in tokens
        ],
        "current-context": current or next(iter(tokens)),
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
