"""What one app's requests and workers share about changes, whatever domain made them.

The GitOps clone (the workers' unbounded handle, and bounded access for request threads)
and, per kind of change, the page where its author revises it: the domain that makes a
kind of change offers that page, so the review pages link to it without knowing the domain.
"""

from __future__ import annotations

from collections.abc import Callable

from portal.changes.gitops import LazyGitOps
from portal.changes.models import Change
from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo

ReviseLink = Callable[[Change], str]
"""Return the path of the page where a change's answers are revised."""


class ChangesRuntime:
    """The settings and GitOps handle of one app, and the revise page of each kind of change."""

    def __init__(self, settings: Settings, gitops: Callable[[], GitOpsRepo] | None = None) -> None:
        """Use ``gitops`` (the workers' handle), else a clone bootstrapped on first use."""
        self.settings = settings
        self.gitops: Callable[[], GitOpsRepo] = gitops if gitops else LazyGitOps(settings)
        self._revise_links: dict[str, ReviseLink] = {}

    def request_gitops(self) -> GitOpsRepo:
        """Return the GitOps clone for a request thread (``PORTAL_GITOPS_REQUEST_TIMEOUT_SECONDS``).

        A remote that is down or hung raises ``GitOpsUnavailableError`` (answered 503)
        within that time instead of holding the request for the worker's git timeout.
        """
        if isinstance(self.gitops, LazyGitOps):
            return self.gitops.bounded(self.settings.gitops_request_timeout_seconds)
        return self.gitops().bounded(self.settings.gitops_request_timeout_seconds)

    def offer_revision(self, kind: str, link: ReviseLink) -> None:
        """Say that changes of ``kind`` can be revised, on the page ``link`` names."""
        self._revise_links[kind] = link

    def revise_link(self, change: Change) -> str | None:
        """Return the path where ``change`` is revised; None when its kind offers no such page."""
        link = self._revise_links.get(change.kind)
        return link(change) if link else None
