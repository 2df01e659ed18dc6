"""Inline review comments on real changes: added on a line, shown there, refused with the
field named, resolved, outdated after a revision; and the changes since a revision."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from markupsafe import escape

from portal.config import Settings
from portal.scaffold.jobs import run_pending
from tests.conftest import ADA, ALAN, GRACE, csrf_token, runtime
from tests.databases import PAGES_ON_SQLITE
from tests.proposals.seed import seed_service
from tests.proposals.test_flow import DEPLOYMENT, LIMIT, bearer, new_token, propose
from tests.review.test_pages import request_change, stored

pytestmark = PAGES_ON_SQLITE

HTMX = {"HX-Request": "true"}
CATALOG = "services/payments/catalog-info.yaml"


def lines_of(settings: Settings, commit: str, path: str) -> list[str]:
    remote = settings.data_dir / "gitops" / "remote.git"
    shown = subprocess.run(
        ["git", "--git-dir", str(remote), "show", f"{commit}:{path}"],
        capture_output=True,
        check=True,
        text=True,
    )
    return shown.stdout.splitlines()


def line_of(lines: list[str], start: str) -> int:
    return next(n for n, text in enumerate(lines, start=1) if text.lstrip().startswith(start))


def post_form(
    client: TestClient,
    change_id: str,
    who: dict[str, str],
    fields: dict[str, str],
    *,
    htmx: bool = False,
    csrf: bool = True,
) -> tuple[int, str, str]:
    data = {"path": CATALOG, "side": "new", "line": "1", "body": "Looks fine", **fields}
    if csrf:
        data["csrf_token"] = csrf_token(client, f"/reviews/{change_id}")
    response = client.post(
        f"/reviews/{change_id}/comments",
        data=data,
        headers=who | (HTMX if htmx else {}),
        follow_redirects=False,
    )
    return response.status_code, response.headers.get("location", ""), response.text


def post_comment(
    client: TestClient,
    change_id: str,
    who: dict[str, str],
    *,
    htmx: bool = False,
    csrf: bool = True,
    **fields: str,
) -> tuple[int, str, str]:
    return post_form(client, change_id, who, fields, htmx=htmx, csrf=csrf)


def thread_after(html: str, line: int, path: str = CATALOG) -> str:
    """Return the comment row right after a line's row of ``path`` (empty: none)."""
    start = html.index(f'<summary><span class="diff-path">{path}</span>')
    html = html[start : html.index("</details>", start)]
    row = rf"<tr><th>{line}</th><td>[^\n]*</td></tr>\n"
    found = re.search(row + r'(<tr class="thread">.*?</td></tr>)', html, re.S)
    return found.group(1) if found else ""


def test_a_comment_is_added_at_a_line_shown_there_and_resolved(
    portal: TestClient, settings: Settings
) -> None:
    change_id = request_change(portal, "payments")
    commit = stored(portal, change_id).commit_sha or ""
    lines = lines_of(settings, commit, CATALOG)
    kind, description = line_of(lines, "kind:"), line_of(lines, "description:")

    form = portal.get(
        f"/reviews/{change_id}/comments/new",
        params={"path": CATALOG, "side": "new", "line": str(kind), "commit": commit},
        headers=GRACE | HTMX,
    )
    assert form.status_code == 200
    row = form.text.strip()
    assert row.startswith('<tr class="comment-form-row"><td colspan="2">') and "<html" not in row
    assert f'name="line" value="{kind}"' in row and f'name="commit" value="{commit}"' in row
    assert 'maxlength="4000"' in row and f"line {kind} of <code>{CATALOG}</code>" in row

    status, _, added = post_comment(
        portal, change_id, GRACE, htmx=True, line=str(kind), commit=commit,
        body="Is <b>Component</b> right?\nSecond line",
    )  # fmt: skip
    assert status == 200 and added.strip().startswith('<tr class="thread">')
    assert "Is &lt;b&gt;Component&lt;/b&gt; right?\nSecond line" in added
    status, location, _ = post_comment(
        portal, change_id, ALAN, line=str(description), commit=commit, body="Say more"
    )
    assert status == 303 and re.fullmatch(rf"/reviews/{change_id}#comment-\d+", location)

    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert '<h2 id="comments-title">2 open comments</h2>' in page
    assert "Is &lt;b&gt;Component&lt;/b&gt; right?" in thread_after(page, kind)
    assert "Say more" in thread_after(page, description)
    assert thread_after(page, kind + 1) == ""  # nowhere else
    assert '<span class="badge warn">2 comments</span>' in page  # on the file's header
    [kind_id] = re.findall(r'id="comment-(\d+)"[^>]*>(?:(?!</article>).)*?Component', page, re.S)

    # Resolving: not by someone who neither wrote it, nor wrote the change, nor reviews it.
    resolve = f"/reviews/{change_id}/comments/{kind_id}/resolve"
    token = csrf_token(portal, f"/reviews/{change_id}")
    outsider = portal.post(resolve, data={"csrf_token": token}, headers=ALAN)
    assert outsider.status_code == 403 and "only the comment&#39;s author" in outsider.text
    assert portal.post(resolve, data={"csrf_token": token}).status_code == 401
    assert portal.post(resolve, headers=ADA).status_code == 403  # no CSRF token
    done = portal.post(resolve, data={"csrf_token": token}, headers=ADA | HTMX)  # the author
    assert done.status_code == 200 and done.text.strip().startswith(
        '<article class="comment resolved"'
    )
    assert (
        '<span class="badge ok">resolved</span> by <a href="/catalog/user/default/ada.lovelace"'
        in done.text
    )
    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert '1 open comment <span class="muted small">(1 resolved)</span></h2>' in page
    missing = portal.post(
        f"/reviews/{change_id}/comments/999999/resolve", data={"csrf_token": token}, headers=GRACE
    )
    assert missing.status_code == 404
    audit = page[page.index('id="audit"') :]
    assert "commented</td><td>services/payments/catalog-info.yaml:" in audit
    assert "comment resolved</td>" in audit


BAD = [
    ({"path": "services/payments/nothing.yaml"}, 422, "path: "),
    ({"path": "../../../etc/passwd"}, 422, "path: "),
    ({"path": "--output=x"}, 422, "path: "),
    ({"path": ""}, 422, "path: "),
    ({"side": "left"}, 422, "side: "),
    ({"side": "old"}, 422, "side: "),  # an added file has no old side
    ({"line": "0"}, 422, "line: "),
    ({"line": "99999"}, 422, "line: "),
    ({"line": "-3"}, 422, "line: "),
    ({"line": "two"}, 422, "line: "),
    ({"line": ""}, 422, "line: "),
    ({"body": "   "}, 422, "body: write the comment"),
    ({"body": "x" * 4001}, 422, "body: at most 4000 characters"),
    ({"body": "bell \x07 here"}, 422, "body: control characters are refused (U+0007"),
    ({"body": "\x1b[31mred"}, 422, "body: control characters are refused (U+001B"),
    ({"body": "next\x85line"}, 422, "body: control characters are refused (U+0085"),
    ({"body": "fine \u202e by me"}, 422, "body: control characters are refused (U+202E"),
    ({"commit": "0" * 40}, 409, "commit: the change has a newer revision"),
]


def test_bad_comments_are_refused_naming_the_field(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    commit = stored(portal, change_id).commit_sha or ""
    for fields, status, message in BAD:
        got, _, html = post_form(portal, change_id, GRACE, {"commit": commit} | fields)
        assert got == status and message in html.replace("&#39;", "'"), fields
        # htmx gets the form again (it swaps only 2xx answers), the error on the field.
        got, _, row = post_form(portal, change_id, GRACE, {"commit": commit} | fields, htmx=True)
        assert got == 200 and row.strip().startswith('<tr class="comment-form-row">'), fields
        assert message in row.replace("&#39;", "'") and 'role="alert"' in row
    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert 'id="comments"' not in page  # nothing was stored
    form = portal.get(
        f"/reviews/{change_id}/comments/new",
        params={"path": "../../etc/passwd", "line": "1", "commit": commit},
        headers=GRACE,
    )
    assert form.status_code == 422 and "path: " in form.text


def test_signed_out_and_tokenless_comments_are_refused(portal: TestClient) -> None:
    change_id = request_change(portal, "payments")
    commit = stored(portal, change_id).commit_sha or ""
    status, _, html = post_comment(portal, change_id, {}, commit=commit)
    assert status == 401 and "Sign in to comment" in html
    status, _, html = post_comment(portal, change_id, GRACE, csrf=False, commit=commit)
    assert status == 403 and "CSRF" in html
    form = portal.get(f"/reviews/{change_id}/comments/new?path={CATALOG}&line=1", headers=HTMX)
    assert form.status_code == 401
    anonymous = portal.get(f"/reviews/{change_id}").text
    assert "data-comment-url" not in anonymous  # nothing to click for those signed out
    assert "data-comment-url" in portal.get(f"/reviews/{change_id}", headers=ALAN).text
    merged = portal.post(f"/api/changes/{change_id}/approve", json={}, headers=GRACE)
    assert merged.status_code == 200, merged.text
    assert "data-comment-url" not in portal.get(f"/reviews/{change_id}", headers=ALAN).text
    status, _, html = post_comment(portal, change_id, GRACE, commit=commit)
    assert status == 409 and "change: a change that is merged takes no comments" in html


def test_a_revision_outdates_comments_on_changed_lines_and_can_be_read_alone(
    portal: TestClient, settings: Settings
) -> None:
    change_id = request_change(portal, "payments")
    first = stored(portal, change_id).commit_sha or ""
    lines = lines_of(settings, first, CATALOG)
    kind, description = line_of(lines, "kind:"), line_of(lines, "description:")
    post_comment(portal, change_id, GRACE, line=str(kind), commit=first, body="Kind is fine")
    post_comment(portal, change_id, GRACE, line=str(description), commit=first, body="Vague")
    asked = {"comment": "Describe what payments does"}
    sent = portal.post(f"/api/changes/{change_id}/request-changes", json=asked, headers=GRACE)
    assert sent.status_code == 200

    page = portal.get(f"/reviews/{change_id}", headers=ADA).text
    top = page.index('id="changes-request"')
    assert top < page.index('id="decision"') < page.index('id="audit"')
    assert "Describe what payments does</blockquote>" in page[top:]

    answers = {"name": "payments", "owner": "platform-team", "description": "Moves the money"}
    revised = portal.post(
        f"/api/changes/{change_id}/revise", json={"answers": answers}, headers=ADA
    )
    assert revised.status_code == 202, revised.text
    assert run_pending(runtime(portal).context) == 1
    second = stored(portal, change_id).commit_sha or ""
    assert second != first

    page = portal.get(f"/reviews/{change_id}", headers=GRACE).text
    assert "Kind is fine" in thread_after(page, kind)  # its line did not change
    assert "Vague" not in thread_after(page, description)
    outdated = re.search(r'<article class="comment outdated".*?</article>', page, re.S)
    assert outdated and "Vague" in outdated.group(0) and "data-outdated" in outdated.group(0)
    was = escape(lines[description - 1])
    assert f"<mark>{was}</mark>" in outdated.group(0) and "Takes payments" in was  # as it was
    assert escape(lines[description - 2]) in outdated.group(0)  # with the line before
    assert (
        '<h2 id="changes-request-title" class="small-heading">Changes requested on revision 1</h2>'
        in page
    )
    since = f'href="/reviews/{change_id}?since=1#diff"'
    assert since in page
    # A comment written against the first revision's page is refused, naming why.
    status, _, html = post_comment(portal, change_id, GRACE, line="1", commit=first)
    assert status == 409 and "newer revision" in html

    whole = page.count('class="diff-file')
    delta = portal.get(f"/reviews/{change_id}?since=1", headers=GRACE).text
    assert 'Changes since revision 1 <span class="muted diff-total">' in delta
    assert f"(<code>{first[:12]}</code>) to revision 2 (<code>{second[:12]}</code>)" in delta
    assert f'<span class="diff-path">{CATALOG}</span>' in delta
    assert 0 < delta.count('class="diff-file') < whole
    assert "services/payments/requirements.lock" not in delta  # unchanged since revision 1
    assert "Moves the money" in delta and "data-comment-url" not in delta
    for bad in ("2", "0", "3", "x", "1;rm", "%2E%2E"):
        refused = portal.get(f"/reviews/{change_id}?since={bad}", headers=GRACE)
        assert refused.status_code == 422 and "since: " in refused.text, bad
    one = portal.get(f"/reviews/{change_id}/files/{CATALOG}?since=1", headers=GRACE | HTMX).text
    assert "Moves the money" in one


def test_on_an_edit_a_removed_line_takes_a_comment_on_the_old_side(
    portal: TestClient, settings: Settings, tmp_path: Path
) -> None:
    seed_service(portal, settings, tmp_path / "someone")
    proposed = propose(portal, bearer(new_token(portal, GRACE)), LIMIT)
    assert proposed.status_code == 202, proposed.text
    assert run_pending(runtime(portal).context) == 1
    change_id = proposed.json()["id"]
    commit = stored(portal, change_id).commit_sha or ""
    page = portal.get(f"/reviews/{change_id}", headers=ADA).text
    start = page.index(f'<summary><span class="diff-path">{DEPLOYMENT}</span>')
    section = page[start : page.index("</details>", start)]
    [(old, text)] = re.findall(
        r'<tr class="del"><th>(\d+)</th><th></th><td>(.*?)</td></tr>', section
    )
    [new] = re.findall(r'<tr class="add"><th></th><th>(\d+)</th>', section)
    assert "512Mi" in text and 'class="hunk"' in section

    fields = {"path": DEPLOYMENT, "side": "old", "line": old, "commit": commit}
    status, location, _ = post_form(portal, change_id, ADA, fields | {"body": "Why more?"})
    assert status == 303 and "#comment-" in location
    status, _, html = post_form(portal, change_id, ADA, fields | {"line": "100000"})
    assert status == 422 and "line: expected a line number from 1 to" in html
    status, _, _ = post_form(portal, change_id, ADA, fields | {"side": "new", "line": new})
    assert status == 303
    page = portal.get(f"/reviews/{change_id}", headers=ADA).text
    start = page.index(f'<summary><span class="diff-path">{DEPLOYMENT}</span>')
    section = page[start : page.index("</details>", start)]
    removed = re.search(
        rf'<tr class="del"><th>{old}</th>.*?</tr>\n<tr class="thread">(.*?)</tr>', section, re.S
    )
    assert removed and "Why more?" in removed.group(1) and "on a removed line" in removed.group(1)
    assert "2 open comments" in page
