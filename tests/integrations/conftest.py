"""Fixtures of the GitOps writer tests: a bootstrapped local remote per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.gitops import (
    GitOpsRepo,
)
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from tests.integrations.gitops_support import make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "var")


@pytest.fixture
def repo(settings: Settings) -> GitOpsRepo:
    return bootstrap_gitops(settings)
