"""Inline review comments: on one line of one file of a change, stored, resolvable.

A comment records the commit it was written on and the text of its line (with a few lines
before it), so when a later revision changes that line it is shown as *outdated* with the
context it was written in. Any signed-in person may comment on an open change; the
comment's author, the change's author and those who may decide on it may resolve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, col, select

from portal.auth.identity import Identity
from portal.changes.models import OPEN_STATUSES, WORK_STATUSES, Change
from portal.changes.store import audit
from portal.clock import utcnow
from portal.free_text import control_character
from portal.review.decide import may_review
from portal.review.diff import MAX_LINE_CHARS
from portal.review.diff_files import ChangeDiff

BODY_MAX_CHARS = 4000
CONTEXT_LINES = 3  # lines kept before the commented one, for an outdated comment
SIDES = ("new", "old")


class ReviewComment(SQLModel, table=True):
    """A reviewer's comment on one line of a file of a change, at one revision."""

    __tablename__ = "review_comment"

    id: int | None = Field(default=None, primary_key=True)
    change_id: str = Field(index=True, foreign_key="review_change.id", max_length=32)
    revision: int
    commit_sha: str = Field(max_length=64)
    path: str = Field(max_length=4096)
    line: int
    side: str = Field(max_length=3)  # new: the line in the change; old: a removed line
    body: str = Field(max_length=BODY_MAX_CHARS)
    line_text: str = ""  # the commented line as it was, to tell when it changed
    context: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    author_ref: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_by: str | None = Field(default=None, max_length=300)
    resolved_at: datetime | None = None

    @property
    def anchor(self) -> str:
        """Return the element id of the comment on the page."""
        return f"comment-{self.id}"


@dataclass(eq=False)
class CommentError(Exception):
    """A comment that cannot be stored: ``field`` names the form field, ``status`` the answer."""

    field: str
    message: str
    status: int = 422

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Draft:
    """What the comment form sends, unchecked (every value a string, as posted)."""

    path: str
    side: str
    line: str
    body: str = ""
    commit: str = ""


def checked_body(body: str) -> str:
    """Return the comment text, trimmed, or raise :class:`CommentError` naming ``body``."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise CommentError("body", "write the comment")
    if len(text) > BODY_MAX_CHARS:
        raise CommentError("body", f"at most {BODY_MAX_CHARS} characters (this has {len(text)})")
    if (control := control_character(text)) is not None:
        code, position = control
        raise CommentError(
            "body", f"control characters are refused ({code} at character {position})"
        )
    return text


def checked_line(change: Change, diff: ChangeDiff, draft: Draft) -> tuple[int, list[str]]:
    """Check that ``draft`` names a line of a file the diff changes; return it and the file.

    The path is only ever looked up among the diff's files, never used to read anything.
    """
    if change.status in WORK_STATUSES or change.status not in OPEN_STATUSES:
        state = change.status.value.replace("_", " ")
        raise CommentError("change", f"a change that is {state} takes no comments", 409)
    entry = diff.entry(draft.path)
    if entry is None:
        raise CommentError("path", f"{draft.path[:200]!r} is not a file this change changes")
    if draft.side not in SIDES:
        raise CommentError("side", "expected new (a line of the change) or old (a removed line)")
    lines = diff.lines(draft.path, draft.side) if not entry.file.binary else None
    if lines is None:
        what = "binary" if entry.file.binary else f"without an {draft.side} side"
        raise CommentError("side", f"{draft.path} is {what}: it has no such lines to comment on")
    if not (draft.line.isascii() and draft.line.isdigit() and 1 <= int(draft.line) <= len(lines)):
        raise CommentError("line", f"expected a line number from 1 to {len(lines)} of {draft.path}")
    return int(draft.line), lines


def new_comment(
    change: Change, diff: ChangeDiff, revision: int, identity: Identity, draft: Draft
) -> ReviewComment:
    """Check ``draft`` against the change and its current diff; return the comment to store."""
    if identity.token is not None:
        raise CommentError("author", "an API token may propose changes, not comment on them", 403)
    line, lines = checked_line(change, diff, draft)
    if draft.commit != diff.head:
        raise CommentError(
            "commit",
            f"the change has a newer revision ({diff.head[:12]}); reload the page and comment "
            "on the current one",
            409,
        )
    body = checked_body(draft.body)
    context = [text[:MAX_LINE_CHARS] for text in lines[max(0, line - 1 - CONTEXT_LINES) : line]]
    return ReviewComment(
        change_id=change.id,
        revision=revision,
        commit_sha=diff.head,
        path=draft.path,
        line=line,
        side=draft.side,
        body=body,
        line_text=context[-1],
        context=context,
        author_ref=identity.user_ref,
    )


def add_comment(session: Session, comment: ReviewComment) -> ReviewComment:
    """Store a checked comment, with an audit event; return it with its id."""
    session.add(comment)
    where = f"{comment.path}:{comment.line}" + (" (removed line)" if comment.side == "old" else "")
    audit(session, comment.change_id, comment.author_ref, "commented", where)
    session.commit()
    session.refresh(comment)
    return comment


def comments_of(session: Session, change_id: str) -> list[ReviewComment]:
    """Return a change's comments, oldest first."""
    query = select(ReviewComment).where(ReviewComment.change_id == change_id)
    return list(session.exec(query.order_by(col(ReviewComment.id))).all())


def may_comment(change: Change, identity: Identity | None) -> bool:
    """Tell whether ``identity`` may comment on ``change`` now (signed in, a person, open)."""
    return (
        identity is not None
        and identity.token is None
        and change.status in OPEN_STATUSES
        and change.status not in WORK_STATUSES
    )


def may_resolve(change: Change, comment: ReviewComment, identity: Identity, admin: str) -> bool:
    """Tell whether ``identity`` may resolve ``comment``: its author, the change's, a reviewer."""
    if identity.token is not None:
        return False
    return (
        identity.user_ref in (comment.author_ref, change.requester_ref)
        or may_review(change, identity, admin) is None
    )


def resolver(
    change: Change, identity: Identity | None, admin_group: str
) -> Callable[[ReviewComment], bool]:
    """Return a test of :func:`may_resolve` for one person (the pages ask it per comment)."""

    def allowed(comment: ReviewComment) -> bool:
        return identity is not None and may_resolve(change, comment, identity, admin_group)

    return allowed


def resolve_comment(
    session: Session, change: Change, comment_id: int, identity: Identity, admin_group: str
) -> ReviewComment:
    """Mark a comment resolved (once; resolving again changes nothing)."""
    comment = session.get(ReviewComment, comment_id)
    if comment is None or comment.change_id != change.id:
        raise CommentError("comment", f"this change has no comment {comment_id}", 404)
    if not may_resolve(change, comment, identity, admin_group):
        raise CommentError(
            "comment",
            "only the comment's author, the change's author or a reviewer may resolve it",
            403,
        )
    if comment.resolved_at is None:
        comment.resolved_by, comment.resolved_at = identity.user_ref, utcnow()
        session.add(comment)
        audit(session, change.id, identity.user_ref, "comment_resolved", f"comment {comment_id}")
        session.commit()
        session.refresh(comment)
    return comment


def is_outdated(comment: ReviewComment, diff: ChangeDiff) -> bool:
    """Tell whether the commented line changed since the comment (``diff``: the whole change)."""
    if comment.commit_sha == diff.head:
        return False
    lines = diff.lines(comment.path, comment.side)
    if lines is None or comment.line > len(lines):
        return True
    return lines[comment.line - 1][:MAX_LINE_CHARS] != comment.line_text
