"""The change page's files: collapsed with size and digest, loaded one at a time on demand,
and only ever the files of the change (hostile paths are 404 or 422, never a 5xx)."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from portal.config import Settings
from tests.conftest import GRACE
from tests.databases import PAGES_ON_SQLITE
from tests.review.test_pages import request_change, stored

pytestmark = PAGES_ON_SQLITE

HTMX = {"HX-Request": "true"}
COLLAPSED = re.compile(
    r'<section class="diff-file collapsed" id="file-(?P<index>\d+)"><div class="diff-head">'
    r'<span class="diff-path">(?P<path>[^<]+)</span>.*?<p class="small">(?P<why>[^<]*?)\. '
    r"(?P<size>[\d,]+) bytes, sha256 <code>(?P<digest>[0-9a-f]{12})</code>"
)


def git_show(settings: Settings, spec: str) -> bytes:
    remote = settings.data_dir / "gitops" / "remote.git"
    return subprocess.run(
        ["git", "--git-dir", str(remote), "show", spec], capture_output=True, check=True
    ).stdout


def template_file(settings: Settings, name: str, tag: str, path: str) -> bytes:
    repo = settings.data_dir / "templates" / f"{name}.git"
    return subprocess.run(
        ["git", "--git-dir", str(repo), "show", f"{tag}:{path}"], capture_output=True, check=True
    ).stdout


def test_vendored_files_are_collapsed_with_size_and_digest(
    portal: TestClient, settings: Settings
) -> None:
    change_id = request_change(portal, "payments")
    change = stored(portal, change_id)
    html = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    collapsed = {m["path"]: m for m in COLLAPSED.finditer(html)}
    label = f"Vendored from template fastapi-service v{change.template_version}"
    vendored = {path: m for path, m in collapsed.items() if m["why"].startswith(label)}
    assert len(vendored) >= 3, collapsed.keys()
    for path, match in vendored.items():
        content = git_show(settings, f"{change.commit_sha}:{path}")
        assert int(match["size"].replace(",", "")) == len(content)
        assert match["digest"] == hashlib.sha256(content).hexdigest()[:12]
        # Really the template's bytes, at the version the change was rendered from.
        relative = path.removeprefix("services/payments/")
        tag = f"v{change.template_version}"
        assert template_file(settings, "fastapi-service", tag, f"template/{relative}") == content
        url = f"/reviews/{change_id}/files/{path}"
        assert f'href="{url}" hx-get="{url}">Show diff</a>' in html
    # Files the answers shaped are shown at once, never collapsed as vendored.
    for shown in ("services/payments/catalog-info.yaml", "clusters/dev/services/payments.yaml"):
        assert shown not in collapsed
        assert f'<summary><span class="diff-path">{shown}</span>' in html
    # The tree lists every file with its counts, collapsed ones marked.
    assert html.count('<li class="collapsed"><a href="#file-') == len(collapsed)
    lock = collapsed.get("services/payments/requirements.lock")
    assert lock is not None and "generated lock file" in lock["why"]


def test_show_diff_loads_one_file_as_a_fragment_or_a_page(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    path = next(m["path"] for m in COLLAPSED.finditer(page) if m["path"].endswith(".py"))
    content = portal.get(f"/reviews/{change_id}/files/{path}", headers=GRACE | HTMX)
    assert content.status_code == 200 and content.headers["Vary"] == "HX-Request"
    fragment = content.text.strip()
    assert fragment.startswith('<div class="file-body">') and "<html" not in fragment
    assert '<table class="diff-table" data-comment-url=' in fragment
    rows = re.findall(r"<tr><th>(\d+)</th><td>", fragment)
    assert rows and rows == [str(n) for n in range(1, len(rows) + 1)]
    comment_url = f'data-comment-url="/reviews/{change_id}/comments/new?path={quote(path)}&amp;'
    assert comment_url in fragment and comment_url not in page  # not on the page before
    full = portal.get(f"/reviews/{change_id}/files/{path}").text
    assert "<html" in full and '<h1 id="file-title"' in full and '<div class="file-body">' in full
    assert "data-comment-url" not in full  # signed out: nothing to comment with
    assert 'href="/reviews/' + change_id + "#file-" in full  # back to the file on the change


HOSTILE = [
    "../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "services/payments/../../../etc/passwd",
    "%2Fetc%2Fpasswd",
    "--output=written.txt",
    "-p",
    "--end-of-options",
    "HEAD:services/payments/catalog-info.yaml",
    ":(top)services/payments/catalog-info.yaml",
    "services/payments/catalog-info.yaml%00",
    "services/payments/nothing.py",
    "services/other/app.py",
    "services/payments",
    "x" * 5000,
    "%E2%80%AE",
    "%FF%FE",
]


@pytest.mark.parametrize("since", ["", "?since=1", "?since=abc"])
def test_the_file_endpoint_serves_only_files_of_the_change(
    portal: TestClient, tmp_path: Path, since: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a "--output=written.txt" would land
    change_id = request_change(portal, "payments")
    for path in HOSTILE:
        response = portal.get(f"/reviews/{change_id}/files/{path}{since}", headers=GRACE)
        assert response.status_code in (404, 422), (path, response.status_code)
        if response.status_code == 422:
            assert "since" in response.text
    assert not (tmp_path / "written.txt").exists()
    good = portal.get(f"/reviews/{change_id}/files/services/payments/catalog-info.yaml{since}")
    assert good.status_code == (200 if not since else 422)
    assert (
        portal.get("/reviews/nochange/files/services/payments/catalog-info.yaml").status_code == 404
    )
