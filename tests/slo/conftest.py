"""Fixtures of the SLO tests: Sloth's conformance data and the real promtool."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.integrations.promtool import PromtoolCli
from tests.slo.support import SLOTH


@pytest.fixture(scope="session")
def sloth_dir() -> Path:
    """Sloth's example specs and generated rules (tests/data/conformance/sloth)."""
    if not SLOTH.is_dir():
        pytest.fail(f"conformance data missing at {SLOTH}")
    return SLOTH


@pytest.fixture
def promtool(promtool_executable: Path) -> PromtoolCli:
    """The real promtool (skips without it, fails with PORTAL_REQUIRE_INTEGRATION=1)."""
    return PromtoolCli(promtool_executable)
