"""Committed paths of a developer's machine: which are reported, and which are the container's.

Paths under the Linux home and root folders are written in pieces (``"/" + "home/..."``)
so that this file does not hold one itself (see tests/test_self_contained.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.kubernetes import Severity
from portal.review.local_paths import FINDINGS_PER_FILE, find_local_paths
from portal.scaffold.runtime import check_tools

HOME = "/" + "home/alice/src/api"
ROOT = "/" + "root/.cache/pip"


def write(root: Path, relative: str, text: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def found(root: Path, *machine_roots: str) -> list[tuple[str, str, str]]:
    findings, _ = find_local_paths(root, machine_roots)
    return [(f.object, f.path, f.message.split("(")[-1].split(")")[0]) for f in findings]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (f"source = {HOME}/lib", "a Linux home folder"),
        (f'cache = "{ROOT}"', "root's home folder"),
        ("data: /tmp/pytest-of-alice/pytest-3/data.csv", "a temporary folder"),
        ("_src_path: /Users/alice/templates/api.git", "a macOS home folder"),
        ("see /var/folders/zz/T/tmpab12/out.txt", "a macOS temporary folder"),
        ("at /private/var/folders/zz/T/x", "a macOS temporary folder"),
        ("model = 'C:\\Users\\alice\\model.skops'", "a Windows drive path"),
        ('"path": "D:\\\\data\\\\air.csv"', "a Windows drive path"),
        ("cd D:/src/api", "a Windows drive path"),
        ("api @ file:///opt/wheels/api-1.0-py3-none-any.whl", "a file:// URL"),
        ("open FILE://server/share/x", "a file:// URL"),
    ],
)
def test_machine_paths_are_reported_with_file_and_line(
    tmp_path: Path, line: str, kind: str
) -> None:
    write(tmp_path, "README.md", f"# api\n\n{line}\n")

    assert found(tmp_path) == [("README.md", "line 3", kind)]


@pytest.mark.parametrize(
    "line",
    [
        "docs: https://example.com/home/index.html and https://api.example.com/Users/42",
        "WORKDIR /app",
        "mountPath: /tmp",
        "TMPDIR=/tmp",
        "relative ./home/alice and ~/notes and $HOME/.config",
        "http://127.0.0.1:8080/metrics s3://bucket/key git@github.com:org/repo.git",
        "pattern = r'[a-z]:/' at 12:30, ratio 1:2",
        "a profile://x URL-like scheme",
    ],
)
def test_ordinary_text_is_not_a_machine_path(tmp_path: Path, line: str) -> None:
    write(tmp_path, "app/main.py", f"{line}\n")

    assert found(tmp_path) == []


def test_container_files_may_use_linux_homes_and_tmp_but_not_a_mac(tmp_path: Path) -> None:
    write(
        tmp_path, "Dockerfile", "WORKDIR /" + "home/app\nRUN pip install --cache-dir /tmp/pip .\n"
    )
    write(tmp_path, "Containerfile.prod", f"COPY --from=build {ROOT} {ROOT}\n")
    write(tmp_path, "deploy/base/deployment.yaml", "      - mountPath: /tmp/cache\n")
    write(tmp_path, ".github/workflows/ci.yaml", "  path: /" + "home/runner/work/api\n")
    write(tmp_path, "build.dockerfile", "COPY /Users/alice/wheels /wheels\n")

    assert found(tmp_path) == [("build.dockerfile", "line 1", "a macOS home folder")]


def test_the_portal_data_folder_is_a_machine_path_everywhere(tmp_path: Path) -> None:
    data = "/srv/portal/var"
    write(tmp_path, "app/settings.toml", f"[models]\nfolder = '{data}/models/air'\n")
    write(tmp_path, "Dockerfile", f"COPY {data} /data\n")
    write(tmp_path, "README.md", "/srv/portal/variants is another folder\nmodels in /data/models\n")

    assert found(tmp_path, data, "/data", "/") == [
        ("Dockerfile", "line 1", "the portal's data folder"),
        ("app/settings.toml", "line 2", "the portal's data folder"),
    ]


def test_binary_files_are_skipped_and_text_files_counted(tmp_path: Path) -> None:
    write(tmp_path, "model.skops", b"PK\x03\x04\x00\x00/Users/alice/model")
    write(tmp_path, "notes.txt", "nothing local\n")
    write(tmp_path, ".git/config", "[core]\n\tworktree = /Users/alice/api\n")

    assert find_local_paths(tmp_path) == ([], 1)


def test_a_symlink_is_judged_by_its_target_and_never_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", "secret.txt", "/Users/alice/secret\n")
    service = tmp_path / "service"
    service.mkdir()
    os.symlink(outside, service / "linked.txt")
    os.symlink("/Users/alice/models", service / "models")
    os.symlink("README.md", service / "README.link")

    problems = found(service, str(tmp_path))

    # The link points into a folder of this machine; the text it links to is never read.
    assert [(name, where) for name, where, _ in problems] == [
        ("linked.txt", "symlink target"),
        ("models", "symlink target"),
    ]


def test_findings_per_file_are_capped_with_a_count_of_the_rest(tmp_path: Path) -> None:
    lines = "".join(f"/Users/alice/file{index}\n" for index in range(FINDINGS_PER_FILE + 3))
    write(tmp_path, "list.txt", lines)

    findings, _ = find_local_paths(tmp_path)

    assert len(findings) == FINDINGS_PER_FILE + 1
    assert findings[-1].message == "list.txt: 3 more lines with local paths"
    assert findings[0].message == (
        "list.txt:1: '/Users/alice/file0' (a macOS home folder) exists only on the machine "
        "that wrote it"
    )


def test_a_local_template_source_in_the_answers_file_is_an_error(tmp_path: Path) -> None:
    # The portal records the template's URL there: a local path is an error like any other.
    answers = "_commit: v1\n_src_path: /tmp/portal/templates/api.git\nrepo: /tmp/x/y\n"
    write(tmp_path, ".copier-answers.yml", answers)
    url = "_commit: v1\n_src_path: https://portal.example.com/templates.git/api.git\n"
    write(tmp_path, "other/.copier-answers.yml", url)

    findings, _ = find_local_paths(tmp_path)

    assert [(f.object, f.path, f.severity) for f in findings] == [
        (".copier-answers.yml", "line 2", Severity.ERROR),
        (".copier-answers.yml", "line 3", Severity.ERROR),
    ]


def test_the_portal_passes_its_data_folder_to_the_checks(tmp_path: Path) -> None:
    tools = check_tools(Settings(data_dir=tmp_path / "var"))

    assert tools.machine_roots == (str(tmp_path / "var"),)
