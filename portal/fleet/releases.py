"""A template's versions, and what changed between two of them.

A template's versions are the tags of its git repository that read as versions (``v1.2.0``
or ``1.2.0``), ordered by :class:`packaging.version.Version`, so ``v0.10.0`` comes after
``v0.9.0``; other tags (a registered template's ``pinned/<commit>``) are no versions.
Between two versions, :func:`changelog` lists the template repository's commits
(:mod:`portal.fleet.render_diff` compares a render of each with the same answers).

Refs reach git only once :mod:`portal.integrations.git_args` accepted them, after
``--end-of-options``; the log itself is read between the two commits they resolve to. Tag
names read from a repository are compared, never handed back to git unchecked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from packaging.version import InvalidVersion, Version

from portal.integrations.git import GitError, GitTimeoutError, run_git
from portal.integrations.git_args import check_ref, check_sha, is_sha

_TAG_FIELDS = ("refname", "objecttype", "objectname", "committerdate:unix")
# An annotated tag's own fields, then (prefixed by `*`) those of the object it points to.
_TAG_FORMAT = "%00".join(f"%({field})" for field in (*_TAG_FIELDS, *(f"*{f}" for f in _TAG_FIELDS)))
_LOG_FIELDS = ("%H", "%h", "%at", "%an", "%s", "%b")  # none can hold a NUL
_LOG_FORMAT = "format:" + "".join(f"{field}%x00" for field in _LOG_FIELDS)


class UnknownRefError(GitError):
    """The template repository has no such ref, commit or version."""


@dataclasses.dataclass(frozen=True)
class TemplateVersion:
    """One version of a template: a tag of its repository that reads as a version."""

    tag: str
    commit: str
    date: datetime  # the commit's date, UTC
    version: str  # the tag without a leading ``v``

    @property
    def number(self) -> Version:
        """Return the version as :mod:`packaging` orders it."""
        return Version(self.version)


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One commit of a template's changelog."""

    sha: str
    short_sha: str
    subject: str
    body: str
    author: str
    date: datetime  # the author date, UTC


def _git_dir(repo: Path) -> str:
    # Always --git-dir, never discovery: a folder that is no repository must not be read as
    # the repository around it (the portal's own checkout, say).
    repo = repo.absolute()
    dot_git = repo / ".git"
    if dot_git.exists():
        return str(dot_git)
    if (repo / "HEAD").is_file():
        return str(repo)  # a bare repository
    raise GitError(f"{repo}: not a git repository")


def _git(repo: Path, *args: str) -> str:
    return run_git("--git-dir", _git_dir(repo), *args)


def _version_of(tag: str) -> Version | None:
    """Return the version a tag names, or None for a tag that is no version."""
    text = tag.removeprefix("v")
    if not text[:1].isascii() or not text[:1].isdigit():
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _utc(timestamp: str) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def template_versions(repo: Path) -> list[TemplateVersion]:
    """Return the version tags of the (bare or not) git repository ``repo``, newest first.

    Tags that are no versions, and tags of anything but a commit, are left out. Raises
    :class:`~portal.integrations.git.GitError` when ``repo`` cannot be read.
    """
    found = []
    # Lines split on "\n" only: a ref name may hold U+2028, which splitlines() would cut at.
    for line in _git(repo, "for-each-ref", f"--format={_TAG_FORMAT}", "refs/tags/").split("\n"):
        fields = line.split("\0")
        if len(fields) != 2 * len(_TAG_FIELDS):
            continue
        ref, kind, commit, date = fields[:4]
        if kind == "tag":  # annotated: the object it points to
            kind, commit, date = fields[5:]
        version = _version_of(ref.removeprefix("refs/tags/"))
        if kind != "commit" or version is None or not is_sha(commit) or not date.isdigit():
            continue  # a tag of a tree, a blob or another tag is no version either
        tag = ref.removeprefix("refs/tags/")
        found.append((version, TemplateVersion(tag, commit, _utc(date), tag.removeprefix("v"))))
    found.sort(key=lambda pair: (pair[0], pair[1].tag), reverse=True)
    return [entry for _, entry in found]


def resolve_commit(repo: Path, ref: str, what: str = "ref") -> str:
    """Return the commit ``ref`` (a tag, branch, sha or ``git describe`` name) resolves to.

    Raises :class:`~portal.integrations.git_args.GitArgumentError` for a value git may not
    see, and :class:`UnknownRefError` for one the repository does not have.
    """
    check_ref(ref, what)
    git_dir = _git_dir(repo)  # outside the try: no repository is not an unknown ref
    verify = ("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    try:
        out = run_git("--git-dir", git_dir, *verify)
    except GitTimeoutError:
        raise
    except GitError:
        raise UnknownRefError(f"{what} {ref!r} is not a commit of {repo.name}") from None
    return check_sha(out.strip(), what)


def versions_after(
    repo: Path, versions: Sequence[TemplateVersion], recorded: str
) -> list[TemplateVersion]:
    """Return the versions newer than a service's recorded ``_commit``, newest first.

    Its length is how far behind the service is. ``recorded`` is what Copier wrote:

    - a tag of ``versions``: the versions numbered higher;
    - a commit, or anything else git resolves to one (``v1.2.0-3-gabc1234``, Copier's
      ``git describe`` of a commit past a tag): the versions whose commit descends from it,
      the commit itself excepted;
    - a tag the repository no longer has (deleted, or never fetched into a mirror) that
      still reads as a version: the versions numbered higher, as for a tag that exists.

    Raises :class:`UnknownRefError` for anything else (a commit the repository does not
    have, a name that is no version), and
    :class:`~portal.integrations.git_args.GitArgumentError` for a value git may not see.
    """
    known = {entry.tag: entry for entry in versions}
    if recorded in known:
        return [entry for entry in versions if entry.number > known[recorded].number]
    try:
        commit = resolve_commit(repo, recorded, "recorded version")
    except UnknownRefError:
        number = _version_of(recorded)
        if number is None:
            raise
        return [entry for entry in versions if entry.number > number]
    # One git process whatever the number of versions: the tags whose commit contains it.
    out = _git(repo, "for-each-ref", f"--contains={commit}", "--format=%(refname)", "refs/tags/")
    descendants = set(out.split("\n"))
    return [
        entry
        for entry in versions
        if f"refs/tags/{entry.tag}" in descendants and entry.commit != commit
    ]


def _range(repo: Path, from_ref: str, to_ref: str) -> tuple[str, str]:
    # Both checked before git runs at all: a refused ref is never half used.
    check_ref(from_ref, "from ref")
    check_ref(to_ref, "to ref")
    return resolve_commit(repo, from_ref, "from ref"), resolve_commit(repo, to_ref, "to ref")


def changelog(repo: Path, from_ref: str, to_ref: str, limit: int = 200) -> list[LogEntry]:
    """Return the commits reachable from ``to_ref`` and not from ``from_ref``, newest first.

    At most ``limit`` of them (:func:`commit_count` says how many there are). Refs are
    checked before git sees them; :class:`UnknownRefError` names one the repository lacks.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    start, end = _range(repo, from_ref, to_ref)
    out = _git(
        repo,
        *("-c", "log.showSignature=false", "log", "--no-color", "--encoding=UTF-8"),
        f"--max-count={limit}",
        f"--format={_LOG_FORMAT}",
        *("--end-of-options", f"{start}..{end}", "--"),
    )
    fields = out.split("\0")[:-1]  # every field ends with NUL, the last one too
    width = len(_LOG_FIELDS)
    if len(fields) % width:
        raise GitError(f"cannot read the log of {repo.name}: unexpected output")
    entries = []
    for index in range(0, len(fields), width):
        sha, short, date, author, subject, body = fields[index : index + width]
        sha = sha.lstrip("\n")  # the separator git puts between commits
        if not is_sha(sha) or not date.isdigit():
            raise GitError(f"cannot read the log of {repo.name}: unexpected output")
        entries.append(LogEntry(sha, short, subject, body.strip("\n"), author, _utc(date)))
    return entries


def commit_count(repo: Path, from_ref: str, to_ref: str) -> int:
    """Return how many commits :func:`changelog` would list without its limit."""
    start, end = _range(repo, from_ref, to_ref)
    out = _git(repo, "rev-list", "--count", "--end-of-options", f"{start}..{end}", "--")
    return int(out.strip())
