"""Fixtures of the integration tests: a bootstrapped local remote, a refusing port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from tests.integrations.gitops_support import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


@pytest.fixture
def repo(settings: Settings) -> GitOpsRepo:
    return bootstrap_gitops(settings)


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """Yield a loopback port that refuses every connection during the test.

    The socket stays bound without listening, so the kernel refuses connections and no
    other process can take the port meanwhile (a port closed again right away can be taken
    by another test's server, which may accept and never answer).
    """
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])
