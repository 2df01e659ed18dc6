"""The revisions of a change, read from its branch: one commit each, chained by second parents.

A revision commit's first parent is the ``main`` the change was built on and its second
the revision before it (see ``GitOpsRepo.update_branch``), and its message says
``Revision: N``. "Changes since revision N" is the diff from that commit to the head.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from portal.integrations.gitops_blobs import revision_chain

_REVISION_LINE = re.compile(r"^Revision: (\d{1,6})\s*$", re.MULTILINE)
MAX_SINCE_CHARS = 6


@dataclass(frozen=True)
class Revision:
    """One revision of a change: its number and its commit on the branch."""

    number: int
    commit: str


class SinceError(ValueError):
    """``?since=`` names no earlier revision of the change; the message names the field."""


@functools.lru_cache(maxsize=128)
def revisions_of(git_dir: Path, head: str) -> tuple[Revision, ...]:
    """Return the revisions that lead to ``head`` (a full sha), oldest first (cached per head).

    A commit whose message has no ``Revision:`` line (made before revisions were recorded)
    is numbered by its place in the chain.
    """
    chain = list(reversed(revision_chain(git_dir, head)))
    revisions: list[Revision] = []
    for position, commit in enumerate(chain, start=1):
        found = _REVISION_LINE.search(commit.message)
        revisions.append(Revision(int(found.group(1)) if found else position, commit.sha))
    return tuple(revisions)


def since_revision(value: str | None, revisions: tuple[Revision, ...]) -> Revision | None:
    """Return the revision ``?since=`` names; None when absent. Refuse anything else.

    Only a revision before the head makes sense: "since the head" would be an empty diff.
    """
    if value is None or value == "":
        return None
    earlier = revisions[:-1]
    choices = (
        f"this change has revisions {earlier[0].number} to {earlier[-1].number} before its last"
        if earlier
        else "this change has a single revision, so there is nothing to compare"
    )
    if len(value) > MAX_SINCE_CHARS or not value.isdigit() or not value.isascii():
        raise SinceError(f"since: expected a revision number such as 1; {choices}")
    wanted = int(value)
    for revision in earlier:
        if revision.number == wanted:
            return revision
    raise SinceError(f"since: there is no earlier revision {wanted}; {choices}")
