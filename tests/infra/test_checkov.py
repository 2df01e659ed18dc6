"""checkov's Terraform checks pass on infra/aws, and every waiver is reasoned and documented.

checkov runs once for the module (a few seconds), offline (``--skip-download``) and
without the registry modules' sources, which are not downloaded: their settings are
asserted by ``test_terraform.py`` instead. Every ``#checkov:skip`` must carry a reason and
appear in the triage table of infra/README.md, and the table must list nothing else.
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from portal.integrations.checkov import checkov_env
from portal.integrations.processes import run_tool
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
AWS = REPO / "infra" / "aws"
README = REPO / "infra" / "README.md"
TIMEOUT_SECONDS = 120.0
# The scan's flags, offline: CI's checkov step on infra/aws runs with these same ones
# (tests/test_portal_image.py holds .github/workflows/ci.yml to it).
TERRAFORM_SCAN = ("--framework", "terraform", "--compact", "--skip-download")
# A row of the README's triage table: | `CKV_...` | where | reason |
TRIAGE_ROW = re.compile(r"^\|\s*`?(CKV2?_[A-Z0-9]+_\d+)`?\s*\|", re.MULTILINE)


@cache
def _report(checkov: Path) -> dict[str, Any]:
    """Run checkov once over infra/aws; later calls reuse the report."""
    with tempfile.TemporaryDirectory(prefix="checkov-home-") as home:
        command = [str(checkov), "--directory", str(AWS), *TERRAFORM_SCAN, "--output", "json"]
        done = run_tool(command, env=checkov_env(Path(home)), cwd=REPO, timeout=TIMEOUT_SECONDS)
    # 0: every check passed, 1: some failed; anything else is checkov itself failing.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert isinstance(report, dict), "one framework: one report object"
    return report


def test_checkov_finds_nothing_unwaived() -> None:
    """No failed check and no parse error, on a scan that did see the resources."""
    report = _report(require_tool("checkov"))
    summary = report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 20, "checkov scanned too little: is infra/aws there?"
    failed = [
        f"{item['check_id']} {item['file_path']} {item['resource']}: {item['check_name']}"
        for item in report["results"]["failed_checks"]
    ]
    assert failed == []


def test_every_waiver_has_a_reason_and_a_row_in_the_readme() -> None:
    """Each skip explains itself, and the README's triage table lists exactly the skipped ids."""
    report = _report(require_tool("checkov"))
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the waivers in infra/aws are expected to show up as skipped checks"
    for item in skipped:
        reason = str(item["check_result"].get("suppress_comment", ""))
        assert len(reason) >= 20, f"{item['check_id']} on {item['resource']}: no real reason"
    documented = set(TRIAGE_ROW.findall(README.read_text(encoding="utf-8")))
    assert documented == {str(item["check_id"]) for item in skipped}
