"""The diff of one commit of a service's folder on GitOps ``main``, for commits no change made.

A service's History (:mod:`portal.catalog.history`) links each commit the portal merged to
its change's diff; a commit made on ``main`` some other way (the seed, a push by hand) links
here. The diff is rendered by the change page's renderer (:mod:`portal.review.diff`), and
only that service's folder is read: the service name and the commit from the URL are
checked before they reach git, and the commit must be on ``main`` and change the folder.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from portal.auth.tokens import SERVICE_NAME
from portal.catalog.history import (
    commit_diff,
    entries_of,
    find_commit,
    history_reader,
    main_head,
    unreadable,
)
from portal.db import SessionDep
from portal.deps import ChangesDep
from portal.integrations.git import GitError
from portal.integrations.git_args import GitArgumentError
from portal.integrations.git_history import check_commit
from portal.review.diff import render_file, split_diff
from portal.review.diff_view import FileThreads
from portal.ui.render import error_page, page

router = APIRouter()

MAX_FILES = 200  # files rendered on the page; a bigger commit lists the rest by name


@router.get("/services/{service}/commits/{commit}", response_class=HTMLResponse)
def commit_page(
    request: Request, session: SessionDep, changes: ChangesDep, service: str, commit: str
) -> Response:
    """Show what ``commit`` (7 to 40 hex digits) changed in ``services/<service>/``."""
    if not SERVICE_NAME.fullmatch(service):
        message = f"service: {service[:80]!r} is not a service name (a DNS-1123 label)."
        return error_page(request, "No such service", message, 404)
    try:
        wanted = check_commit(commit)
    except GitArgumentError as exc:
        return error_page(request, "Not a commit", f"{exc}.", 400)
    timeout = changes.settings.gitops_request_timeout_seconds
    try:
        gitops = changes.request_gitops()
        head, stale = main_head(gitops)
        branch = {"branch": gitops.main}  # what the diff rows name when a file is cut short
        reader = history_reader(gitops, timeout)
        found = find_commit(reader, head, service, wanted)
        text = commit_diff(reader, service, found) if found else ""
    except GitError as exc:
        message = unreadable(exc)
        return error_page(request, "GitOps repository unavailable", message, 503)
    if found is None:
        message = (
            f"No commit {wanted} on main changes services/{service}/: it is unknown, "
            "ambiguous (give more digits) or changed other folders only."
        )
        return error_page(request, "No such commit", message, 404)
    files = split_diff(text)
    context = {
        "active": "catalog",
        "service": service,
        "commit": found,
        "entry": entries_of(session, [found])[0],
        "stale": stale,
        "files": [(file, render_file(file)) for file in files[:MAX_FILES]],
        "unshown": [file.path for file in files[MAX_FILES:]],
        "no_threads": FileThreads(),
        "branch": branch,
    }
    return page(request, "review/commit.html", context)
