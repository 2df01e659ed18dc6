"""Copier templates registered by git URL and ref: fetched, inspected, pinned, mirrored.

A registered template is fetched into a bare mirror in the data dir
(``<data_dir>/templates/git/<name>.git``) and pinned to the commit the ref had; Copier
renders from that mirror at that commit, so rendering never waits on the network and a ref
that moves upstream changes nothing until the template is registered again. The template
is refused like a bundled one (tasks, migrations, secrets, outward links); ``template.yaml``
is optional (the title is then the name and the version the ref or the commit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import tempfile
from pathlib import Path

from sqlmodel import Session, col, select

from portal.catalog.models import utcnow
from portal.integrations.git import GitError, run_git
from portal.integrations.gitops_plumbing import RemoteUrl
from portal.scaffold.models import RegisteredTemplate
from portal.scaffold.templates import _GIT_OPTIONS, _VERSION_RE, TemplateError, TemplateInfo
from portal.scaffold.templates import load_template as load_template_folder

_URL_RE = re.compile(r"^(https://|ssh://|file://|git@[^:/]+:)[^\s]+$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")


@dataclasses.dataclass(frozen=True)
class GitTemplate:
    """A template registered by git URL and ref, pinned to the commit it had then."""

    info: TemplateInfo
    url: str
    ref: str
    commit: str
    mirror: Path

    @property
    def src(self) -> str:
        """Return the template source to give Copier: the local mirror."""
        return str(self.mirror)

    @property
    def vcs_ref(self) -> str:
        """Return the ref to render: the commit, so a moved branch or tag changes nothing."""
        return self.commit

    @property
    def origin(self) -> str:
        """Say where the template comes from, as the Create page and the API show it."""
        return f"{self.url} at {self.ref}"


def name_from_url(url: str) -> str:
    """Return the template name a URL suggests (its last path part, without ``.git``)."""
    last = re.split(r"[/:]", url.rstrip("/"))[-1]
    return last.removesuffix(".git").lower()


def mirror_dir(data_dir: Path, name: str) -> Path:
    """Return where a registered template is mirrored in the data dir."""
    return data_dir / "templates" / "git" / f"{name}.git"


def _check_source(url: str, ref: str) -> None:
    if not _URL_RE.match(url) or not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise TemplateError(f"cannot register {url!r} at {ref!r}: expected a git URL and a ref")
    if RemoteUrl.parse(url).public != url:
        raise TemplateError(
            f"{RemoteUrl.parse(url).public}: the URL carries credentials; the portal stores "
            "template URLs in its database, so use an SSH deploy key or a git credential helper"
        )


def _has_commit(mirror: Path, commit: str) -> bool:
    try:
        run_git("--git-dir", str(mirror), "cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        return False
    return True


def fetch_into_mirror(url: str, ref: str, mirror: Path) -> str:
    """Fetch ``ref`` of ``url`` into the bare ``mirror`` (created if needed); return its commit."""
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "--quiet", "--bare", "--initial-branch=main", str(mirror))
    git = ("--git-dir", str(mirror), *_GIT_OPTIONS)
    try:
        # Full history: Copier warns on (and mishandles) shallow template repositories.
        run_git(*git, "fetch", "--quiet", "--", url, ref)
    except GitError as exc:
        raise TemplateError(f"cannot fetch {ref} from {url}: {exc}") from exc
    commit = run_git(*git, "rev-parse", "FETCH_HEAD^{commit}").strip()
    # A tag per pinned commit keeps it from garbage collection and lets Copier's clone of
    # the mirror see it; main is the newest fetch, so the mirror has a HEAD to clone.
    run_git(*git, "update-ref", f"refs/tags/pinned/{commit}", commit)
    run_git(*git, "update-ref", "refs/heads/main", commit)
    return commit


def inspect_commit(mirror: Path, commit: str, name: str, ref: str) -> TemplateInfo:
    """Load the template at ``commit`` of the mirror (refusals raise ``TemplateError``)."""
    with tempfile.TemporaryDirectory(prefix="portal-template-") as scratch:
        checkout = Path(scratch) / name
        run_git("init", "--quiet", str(checkout))
        git = ("-C", str(checkout), *_GIT_OPTIONS)
        run_git(
            *git, "fetch", "--quiet", "--depth=1", "--", str(mirror), f"refs/tags/pinned/{commit}"
        )
        run_git(*git, "-c", "advice.detachedHead=false", "checkout", "--quiet", commit)
        info = load_template_folder(checkout, name, manifest=False)
    if not info.version:
        version = ref.removeprefix("v") if _VERSION_RE.match(ref.removeprefix("v")) else ""
        info = dataclasses.replace(info, version=version or commit[:12])
    return info


def register_git_template(
    url: str, ref: str, *, name: str | None = None, data_dir: Path | None = None
) -> GitTemplate:
    """Fetch ``ref`` of the template at ``url``, inspect it and pin its commit.

    ``url`` is an ``https://``, ``ssh://``, ``git@host:path`` or ``file://`` URL without
    credentials. With ``data_dir`` the mirror stays there (what the portal renders from);
    without, it lives in a temporary folder (an inspection only). Persisting the
    registration is :func:`save_registration`'s job.
    """
    _check_source(url, ref)
    name = name or name_from_url(url)
    if not _NAME_RE.match(name):
        raise TemplateError(f"template name {name!r} must be a DNS-1123 label")
    if data_dir is None:
        with tempfile.TemporaryDirectory(prefix="portal-template-") as scratch:
            mirror = Path(scratch) / f"{name}.git"
            commit = fetch_into_mirror(url, ref, mirror)
            info = inspect_commit(mirror, commit, name, ref)
        return GitTemplate(info, url, ref, commit, mirror)
    mirror = mirror_dir(data_dir, name)
    commit = fetch_into_mirror(url, ref, mirror)
    return GitTemplate(inspect_commit(mirror, commit, name, ref), url, ref, commit, mirror)


def save_registration(
    session: Session, template: GitTemplate, registered_by: str
) -> RegisteredTemplate:
    """Store a registration (a new name, or a new pin of a name registered before)."""
    name = template.info.name
    row = session.get(RegisteredTemplate, name)
    fields = {
        "url": template.url,
        "ref": template.ref,
        "commit": template.commit,
        "title": template.info.title,
        "version": template.info.version,
        "registered_by": registered_by,
        "registered_at": utcnow(),
    }
    if row is None:
        row = RegisteredTemplate.model_validate({"name": name, **fields})
    else:
        row.sqlmodel_update(fields)
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def registrations(session: Session) -> list[RegisteredTemplate]:
    """Return every registered template, by name."""
    return list(session.exec(select(RegisteredTemplate).order_by(col(RegisteredTemplate.name))))


def unregister(session: Session, name: str) -> bool:
    """Forget a registered template (services rendered from it keep their answers file)."""
    row = session.get(RegisteredTemplate, name)
    if row is None:
        return False
    session.delete(row)
    session.commit()
    return True


def load_registered(row: RegisteredTemplate, data_dir: Path) -> GitTemplate:
    """Make a registration renderable here: mirror its pinned commit if this replica lacks it."""
    mirror = mirror_dir(data_dir, row.name)
    if not (mirror / "HEAD").exists() or not _has_commit(mirror, row.commit):
        fetched = fetch_into_mirror(row.url, row.ref, mirror)
        if fetched != row.commit:
            # The ref moved upstream since it was pinned: ask for the pinned commit itself
            # (git servers serve a commit that is still reachable from some ref).
            with contextlib.suppress(TemplateError):
                fetch_into_mirror(row.url, row.commit, mirror)
        if not _has_commit(mirror, row.commit):
            raise TemplateError(
                f"template {row.name}: {row.ref} of {row.url} moved to {fetched[:12]} and the "
                f"pinned commit {row.commit[:12]} is no longer there; register it again"
            )
    info = inspect_commit(mirror, row.commit, row.name, row.ref)
    return GitTemplate(info, row.url, row.ref, row.commit, mirror)
