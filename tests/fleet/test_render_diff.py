"""The diff of a template's default renders between two versions, made by the real Copier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.fleet import render_diff as render_diff_module
from portal.fleet.releases import changelog
from portal.fleet.render_diff import compare_folders, default_answers, render_diff
from portal.integrations import copier as copier_integration
from portal.integrations.copier import CopierRenderer, FakeRenderer
from portal.integrations.git_args import GitArgumentError
from portal.scaffold.registry.manifest import load_template
from tests.fleet.template_history import BASE, DAY, commit, git

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_render_diff_refuses_a_hostile_ref_before_rendering(tmp_path: Path) -> None:
    fake = FakeRenderer()
    with pytest.raises(GitArgumentError, match="to ref '--output=x' is refused"):
        render_diff(fake, "tpl", {"name": "demo"}, "v1.0.0", "--output=x", tmp_path)
    assert fake.calls == []


COPIER_YML = """\
_subdirectory: template
name:
  type: str
  placeholder: demo
greeting:
  type: str
  default: {greeting}
"""
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.fixture(scope="module", autouse=True)
def _stop_render_workers() -> Iterator[None]:
    yield
    copier_integration.shutdown()


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A Copier template tagged v1.0.0 and v2.0.0: a changed default, a file added and removed."""
    repo = tmp_path / "tiny"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(repo))
    commit(
        repo,
        "First version",
        {
            "copier.yml": COPIER_YML.format(greeting="hello"),
            "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers|to_nice_yaml }}",
            "template/README.md.jinja": "{{ greeting }} from {{ name }}\nsecond line\n",
            "template/old.txt": "going away\n",
            "template/same.txt": "unchanged\n",
            "template/logo.png": PNG + b"\x01",
        },
        BASE,
    )
    git(repo, "tag", "v1.0.0")
    commit(
        repo,
        "Say hi\n\nA friendlier default greeting.",
        {
            "copier.yml": COPIER_YML.format(greeting="hi"),
            "template/old.txt": None,
            "template/{{ name }}-new.txt.jinja": "{{ name }} is new",
            "template/logo.png": PNG + b"\x02",
        },
        BASE + DAY,
    )
    git(repo, "tag", "v2.0.0")
    return repo


def test_a_default_render_diff_between_two_versions(template: Path, tmp_path: Path) -> None:
    answers = default_answers(load_template(template, "tiny", manifest=False))
    assert answers == {"name": "demo"}  # the greeting is left to each version's default
    work = tmp_path / "work"
    diff = render_diff(CopierRenderer(), str(template), answers, "v1.0.0", "v2.0.0", work)
    assert diff.added == ("demo-new.txt",)
    assert diff.removed == ("old.txt",)
    assert diff.modified == ("README.md", "logo.png")
    assert diff.answers_file == ".copier-answers.yml"
    assert (work / "from" / "demo" / ".copier-answers.yml").is_file()  # rendered, left out
    by_path = {entry.path: entry for entry in diff.files}
    assert by_path["README.md"].diff == (
        "--- a/README.md\n"
        "+++ b/README.md\n"
        "@@ -1,2 +1,2 @@\n"
        "-hello from demo\n"
        "+hi from demo\n"
        " second line\n"
    )
    assert by_path["demo-new.txt"].diff == (
        "--- /dev/null\n"
        "+++ b/demo-new.txt\n"
        "@@ -0,0 +1 @@\n"
        "+demo is new\n"
        "\\ No newline at end of file\n"
    )
    assert by_path["old.txt"].diff.endswith("@@ -1 +0,0 @@\n-going away\n")
    assert (by_path["logo.png"].binary, by_path["logo.png"].diff) == (True, "")
    assert not diff.cut
    # The same repository's changelog between the two.
    assert [(e.subject, e.body) for e in changelog(template, "v1.0.0", "v2.0.0")] == [
        ("Say hi", "A friendlier default greeting.")
    ]


def test_default_answers_of_a_bundled_template_are_its_examples() -> None:
    info = load_template(REPO_ROOT / "templates" / "fastapi-service")
    answers = default_answers(info)
    required = {q.name: q.placeholder for q in info.questions if q.required}
    assert set(answers) == set(required)
    assert answers["name"] == "air-quality-api"


def folders(
    tmp_path: Path, before: dict[str, str | bytes], after: dict[str, str | bytes]
) -> tuple[Path, Path]:
    pair = (tmp_path / "before", tmp_path / "after")
    for root, files in zip(pair, (before, after), strict=True):
        for relative, content in files.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                (root / relative).write_bytes(content)
            else:
                (root / relative).write_text(content)
    return pair


def test_diff_text_is_capped_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = "".join(f"line {n}\n" for n in range(40))
    before, after = folders(tmp_path, {"a.txt": "", "b.txt": ""}, {"a.txt": big, "b.txt": big})
    whole = compare_folders(before, after, "v1", "v2").files[0].diff
    monkeypatch.setattr(render_diff_module, "MAX_DIFF_CHARS", 120)
    diff = compare_folders(before, after, "v1", "v2")
    first, second = diff.files
    assert first.cut and whole.startswith(first.diff) and first.diff.endswith("\n")
    assert 100 < len(first.diff) <= 120  # cut at the last whole line that fits
    assert (second.path, second.cut, second.diff) == ("b.txt", True, "")
    assert diff.cut and not compare_folders(before, before, "v1", "v1").files


def test_a_file_too_large_to_diff_is_listed_without_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render_diff_module, "MAX_DIFF_FILE_BYTES", 10)
    before, after = folders(tmp_path, {"big.txt": "a" * 11}, {"big.txt": "b" * 11})
    (entry,) = compare_folders(before, after, "v1", "v2").files
    assert (entry.status, entry.binary, entry.cut, entry.diff) == ("modified", False, True, "")


def test_mode_changes_and_invalid_utf8_and_unchanged_files(tmp_path: Path) -> None:
    before, after = folders(
        tmp_path,
        {"run.sh": "echo\n", "latin.txt": b"caf\xe9\n", "same.txt": "x\n"},
        {"run.sh": "echo\n", "latin.txt": b"caf\xe8\n", "same.txt": "x\n"},
    )
    (after / "run.sh").chmod(0o755)
    diff = compare_folders(before, after, "v1", "v2")
    by_path = {entry.path: entry for entry in diff.files}
    assert set(by_path) == {"latin.txt", "run.sh"}
    assert by_path["run.sh"].diff == "old mode 100644\nnew mode 100755\n"
    assert by_path["latin.txt"].binary
