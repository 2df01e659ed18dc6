"""Template registry entries from a git URL and ref: fetched, inspected, pinned, mirrored.

A registered template is fetched into a bare mirror in the data dir
(``<data_dir>/templates/git/<name>.git``) and pinned to the commit the ref had; Copier
renders from that mirror at that commit, so rendering never waits on the network and a ref
that moves upstream changes nothing until the template is registered again. The template
is refused like a bundled one (tasks, migrations, secrets, outward links); ``template.yaml``
is optional (the title is then the name and the version the ref or the commit).

Only URLs the source policy allows are fetched (``PORTAL_TEMPLATE_URL_SCHEMES`` and
``PORTAL_TEMPLATE_URL_HOSTS``, see :mod:`portal.integrations.git_sources`). A registration
is fetched into a scratch mirror first and copied into the data dir only once accepted,
and a failed fetch says the same thing whatever the cause (a missing path, a missing ref,
no access), so refusals leave nothing behind and reveal nothing about the portal's host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from sqlmodel import Session, col, select

from portal.clock import utcnow
from portal.integrations.git import GitError, run_git
from portal.integrations.git_args import GitArgumentError, check_ref, check_sha
from portal.integrations.git_sources import (
    Resolver,
    SourcePolicy,
    SourceRefusedError,
    SourceUnreachableError,
    system_resolver,
    vet_source,
)
from portal.integrations.gitops_plumbing import RemoteUrl
from portal.scaffold.models import RegisteredTemplate
from portal.scaffold.registry.bundled import _GIT_OPTIONS
from portal.scaffold.registry.manifest import _VERSION_RE, TemplateError, TemplateInfo
from portal.scaffold.registry.manifest import load_template as load_template_folder

logger = logging.getLogger(__name__)

_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://|[^@/:\s]+@[^@/:\s]+:)\S+$")
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
    # Credentials first: every later message repeats the URL.
    if RemoteUrl.parse(url).public != url:
        raise TemplateError(
            f"{RemoteUrl.parse(url).public}: the URL carries credentials; the portal stores "
            "template URLs in its database, so use an SSH deploy key or a git credential helper"
        )
    problem = "" if _URL_RE.match(url) else "not a git URL"
    try:
        check_ref(ref)
    except GitArgumentError as exc:
        problem = str(exc)
    if problem:
        raise TemplateError(
            f"cannot register {url!r} at {ref!r}: expected a git URL and a ref ({problem})"
        )


def _cannot_fetch(url: str, ref: str) -> TemplateError:
    # One message whatever went wrong, so a refusal never tells whether a path exists.
    return TemplateError(
        f"cannot fetch {ref} from {url}: no such repository or ref, or the portal may not read it"
    )


def _vetted(url: str, ref: str, policy: SourcePolicy, resolve: Resolver) -> list[str]:
    """Return the git options of a fetch from ``url``, or refuse it by the policy."""
    try:
        return vet_source(url, policy, resolve)
    except SourceRefusedError as exc:
        raise TemplateError(f"cannot register the template: {exc}") from None
    except SourceUnreachableError as exc:
        logger.warning("template fetch of %s from %s refused: %s", ref, url, exc)
        raise _cannot_fetch(url, ref) from None


def _has_commit(mirror: Path, commit: str) -> bool:
    try:
        run_git(
            "--git-dir", str(mirror), "cat-file", "-e", "--end-of-options", f"{commit}^{{commit}}"
        )
    except GitError:
        return False
    return True


def fetch_into_mirror(url: str, ref: str, mirror: Path, options: Sequence[str] = ()) -> str:
    """Fetch ``ref`` of ``url`` into the bare ``mirror`` (created if needed); return its commit.

    ``options`` are the git options :func:`~portal.integrations.git_sources.vet_source`
    gave for ``url``. A failed fetch is reported the same way whatever the cause.
    """
    try:
        check_ref(ref)
    except GitArgumentError as exc:
        raise TemplateError(str(exc)) from None
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "--quiet", "--bare", "--initial-branch=main", str(mirror))
    git = ("--git-dir", str(mirror), *_GIT_OPTIONS)
    try:
        # Full history: Copier warns on (and mishandles) shallow template repositories.
        run_git(*git, *options, "fetch", "--quiet", "--", url, ref)
    except GitError as exc:
        logger.warning("template fetch of %s from %s failed: %s", ref, url, exc)
        raise _cannot_fetch(url, ref) from None
    commit = run_git(*git, "rev-parse", "--verify", "FETCH_HEAD^{commit}").strip()
    _pin(mirror, check_sha(commit), ref)
    return commit


def version_tag(ref: str) -> str | None:
    """Return ``ref`` when it names a version (``v1.2.0``, ``1.2.0``), else None."""
    return ref if _VERSION_RE.match(ref.removeprefix("v")) else None


def _pin(mirror: Path, commit: str, ref: str) -> None:
    # A tag per pinned commit keeps it from garbage collection and lets Copier's clone of
    # the mirror see it; main is the newest fetch, so the mirror has a HEAD to clone. A ref
    # that names a version is kept as that tag too: the registered versions are the ones
    # the fleet page lists and services can be updated to (portal.fleet).
    git = ("--git-dir", str(mirror), *_GIT_OPTIONS)
    run_git(*git, "update-ref", "--end-of-options", f"refs/tags/pinned/{commit}", commit)
    run_git(*git, "update-ref", "--end-of-options", "refs/heads/main", commit)
    if (tag := version_tag(ref)) is not None:
        run_git(*git, "update-ref", "--end-of-options", f"refs/tags/{tag}", commit)


def _adopt(staging: Path, mirror: Path, commit: str, ref: str) -> None:
    """Copy the pinned commit (and its history) of an accepted staging mirror into ``mirror``."""
    if not (mirror / "HEAD").exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        run_git("init", "--quiet", "--bare", "--initial-branch=main", str(mirror))
    git = ("--git-dir", str(mirror), *_GIT_OPTIONS)
    run_git(*git, "fetch", "--quiet", "--", str(staging), f"refs/tags/pinned/{commit}")
    _pin(mirror, commit, ref)


def inspect_commit(mirror: Path, commit: str, name: str, ref: str) -> TemplateInfo:
    """Load the template at ``commit`` of the mirror (refusals raise ``TemplateError``)."""
    try:
        check_sha(commit)
    except GitArgumentError as exc:
        raise TemplateError(f"template {name}: {exc}") from None
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
    url: str,
    ref: str,
    *,
    name: str | None = None,
    data_dir: Path | None = None,
    policy: SourcePolicy | None = None,
    resolve: Resolver = system_resolver,
) -> GitTemplate:
    """Fetch ``ref`` of the template at ``url``, inspect it and pin its commit.

    ``url`` is an ``https://``, ``ssh://``, ``user@host:path`` (or, when ``policy`` allows
    it, ``file:///``) URL without credentials, from a host ``policy`` allows (default: the
    settings' defaults). The fetch goes to a scratch mirror that is deleted whatever
    happens; with ``data_dir`` an accepted commit is then copied into the mirror the portal
    renders from, so a refused template leaves nothing behind. Persisting the registration
    is :func:`save_registration`'s job.
    """
    _check_source(url, ref)
    name = name or name_from_url(url)
    if not _NAME_RE.match(name):
        raise TemplateError(f"template name {name!r} must be a DNS-1123 label")
    options = _vetted(url, ref, policy or SourcePolicy(), resolve)
    with tempfile.TemporaryDirectory(prefix="portal-template-") as scratch:
        staging = Path(scratch) / f"{name}.git"
        commit = fetch_into_mirror(url, ref, staging, options)
        info = inspect_commit(staging, commit, name, ref)
        if data_dir is None:
            return GitTemplate(info, url, ref, commit, staging)
        mirror = mirror_dir(data_dir, name)
        _adopt(staging, mirror, commit, ref)
    return GitTemplate(info, url, ref, commit, mirror)


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


def load_registered(
    row: RegisteredTemplate,
    data_dir: Path,
    policy: SourcePolicy | None = None,
    resolve: Resolver = system_resolver,
) -> GitTemplate:
    """Make a registration renderable here: mirror its pinned commit if this replica lacks it.

    The URL is held to ``policy`` again before anything is fetched (it may have changed).
    """
    try:
        check_ref(row.ref)
        check_sha(row.commit)
    except GitArgumentError as exc:
        raise TemplateError(f"template {row.name}: {exc}") from None
    mirror = mirror_dir(data_dir, row.name)
    if not (mirror / "HEAD").exists() or not _has_commit(mirror, row.commit):
        options = _vetted(row.url, row.ref, policy or SourcePolicy(), resolve)
        fetched = fetch_into_mirror(row.url, row.ref, mirror, options)
        if fetched != row.commit:
            # The ref moved upstream since it was pinned: ask for the pinned commit itself
            # (git servers serve a commit that is still reachable from some ref).
            with contextlib.suppress(TemplateError):
                fetch_into_mirror(row.url, row.commit, mirror, options)
        if not _has_commit(mirror, row.commit):
            raise TemplateError(
                f"template {row.name}: {row.ref} of {row.url} moved to {fetched[:12]} and the "
                f"pinned commit {row.commit[:12]} is no longer there; register it again"
            )
    info = inspect_commit(mirror, row.commit, row.name, row.ref)
    return GitTemplate(info, row.url, row.ref, row.commit, mirror)
