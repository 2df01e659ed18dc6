"""A fresh clone needs nothing beside it: no file reads material from outside the repository.

Test data from elsewhere is vendored into ``tests/data/`` (or a template's fixtures) with
its license; a reference to a sibling folder of the checkout or to a path of one machine
works only where that folder happens to exist, so it is refused here. Integration tests
skip (or fail in CI) naming the missing tool and what installs it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CONFORMANCE, REPO, TOOLS, require_tool

# Each pattern is built so that this file does not match itself.
OUTSIDE = {
    "a sibling folder of the checkout": re.compile(r"\.\./shared\b"),
    "a path built from the checkout's parent": re.compile(r"""parent\s*/\s*["']shared["']"""),
    "the folder material is handed over in": re.compile(
        r"(?<![\w/-])shared/(?:conformance|data|hooks|DESIGN\.md)"
    ),
    "an absolute path of one machine": re.compile(r"(?<![\w.~:-])/(?:work|root|home)/"),
}
# Justified exceptions, as {path: reason}; none so far.
ALLOWED: dict[str, str] = {}


def references(text: str) -> list[tuple[int, str]]:
    """Return (line number, what it refers to) for every reference outside the repository."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        found += [(number, what) for what, pattern in OUTSIDE.items() if pattern.search(line)]
    return found


def project_files() -> list[str]:
    """Every file a commit would hold: tracked ones and new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


# Examples in pieces, joined by the test, so that this file holds no reference itself.
@pytest.mark.parametrize(
    ("pieces", "refers"),
    [
        (("The target design is `..", "/shared/DESIGN.md`."), True),
        (("SHARED = REPO.parent / ", '"shared"'), True),
        (("(copies of `shared", "/data/open-meteo/`)"), True),
        (("CHECKOV = '/", "root/.tools/checkov'"), True),
        (("cd /", "work/main && make test"), True),
        (("HOME=/", "home/portal"), True),
        (('SLOTH = CONFORMANCE / "sloth"',), False),
        (("tests/data/conformance/backstage/examples",), False),
        (("a shared list, a shared/common folder",), False),
        (("https://example.com/home/index.html and ~/work/notes",), False),
    ],
)
def test_references_outside_the_repository_are_recognised(
    pieces: tuple[str, ...], refers: bool
) -> None:
    assert bool(references("".join(pieces))) is refers


def test_no_project_file_refers_outside_the_repository() -> None:
    files = project_files()
    assert "tests/test_self_contained.py" in files and len(files) > 100
    offending, allowed = [], set()
    for name in files:
        data = (REPO / name).read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        for number, what in references(data.decode("utf-8", errors="replace")):
            if name in ALLOWED:
                allowed.add(name)
            else:
                offending.append(f"{name}:{number}: {what}")
    assert offending == [], "vendor the material into the repository instead:\n" + "\n".join(
        offending
    )
    assert allowed == set(ALLOWED), "an allowed exception no longer applies: remove it"


@pytest.mark.parametrize("folder", sorted(path.name for path in CONFORMANCE.iterdir()))
def test_vendored_conformance_data_keeps_its_license_and_origin(folder: str) -> None:
    vendored = CONFORMANCE / folder
    assert (vendored / "LICENSE").stat().st_size > 1000
    readme = (vendored / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\b[0-9a-f]{40}\b", readme), "the README names no source commit"
    assert "github.com" in readme or "GitHub" in readme


def test_a_missing_tool_skips_naming_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no tool on PATH
    monkeypatch.delenv("PORTAL_PROMTOOL_PATH", raising=False)
    monkeypatch.delenv("PORTAL_REQUIRE_INTEGRATION", raising=False)

    with pytest.raises(pytest.skip.Exception) as skipped:
        require_tool("promtool")
    assert str(skipped.value) == (
        "promtool not found on PATH or at PORTAL_PROMTOOL_PATH (Debian package: prometheus)"
    )
    with pytest.raises(pytest.skip.Exception, match=r"^chromium not found .*Debian package"):
        require_tool("chromium")

    monkeypatch.setenv("PORTAL_REQUIRE_INTEGRATION", "1")
    with pytest.raises(BaseException) as failed:  # a skip here must fail this test, not skip it
        require_tool("prometheus")
    assert failed.type is pytest.fail.Exception
    assert "missing: prometheus not found on PATH (Debian package: prometheus)" in str(failed.value)


def test_every_tool_says_what_installs_it() -> None:
    for name, tool in TOOLS.items():
        assert re.match(r"(Debian|PyPI) package: \S+|run `make tools`", tool.installed_by), name
