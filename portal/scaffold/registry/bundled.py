"""The template registry's bundled templates: found in ``templates/``, published to git.

Every folder of ``templates/`` holding a ``copier.yml`` and a ``template.yaml`` manifest is
a template. :func:`publish` commits the folder into a bare repository
``<data_dir>/templates/<name>.git`` and tags the commit ``v<version>``, so that Copier
records ``_src_path`` and ``_commit`` in ``.copier-answers.yml`` and ``copier update``
works later. Publishing semantics:

- unchanged content: nothing happens (no commit, no tag);
- a new version: a new commit on ``main`` and a new annotated tag ``v<version>``;
- changed content under an already tagged version: the content is committed on ``main``
  (nothing is lost) but the tag is never moved, because services rendered from it must
  stay reproducible for ``copier update``. Renders keep using the tag, and the result
  says ``unreleased_changes`` (also logged as a warning) until the version is bumped.

Each folder is read and vetted by :func:`portal.scaffold.registry.manifest.load_template`,
which refuses templates the portal cannot render safely.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from portal.integrations.git import GitError, run_git
from portal.scaffold.registry.manifest import (
    _NAME_RE,
    _VERSION_RE,
    COPIER_FILES,
    MANIFEST,
    TemplateError,
    TemplateInfo,
    load_template,
)

logger = logging.getLogger(__name__)

_IGNORED = "__pycache__/\n*.py[co]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n"
_GIT_OPTIONS = (
    *("-c", "user.name=Developer portal", "-c", "user.email=portal@localhost"),
    *("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.autocrlf=false"),
    *("-c", "core.excludesFile=/dev/null", "-c", "protocol.ext.allow=never"),
)


@dataclass(frozen=True)
class PublishedTemplate:
    """A bundled template published as a tagged git repository (what Copier renders from)."""

    name: str
    version: str
    repo: Path
    tag: str
    commit: str  # the commit the tag points to
    head: str  # tip of main; differs from `commit` when there are unreleased changes
    changed: bool  # this call created a commit or a tag
    unreleased_changes: bool

    @property
    def src(self) -> str:
        """Return the template source to give Copier (the repository's path)."""
        return str(self.repo)

    @property
    def vcs_ref(self) -> str:
        """Return the ref to render (the version's tag)."""
        return self.tag


def discover(templates_dir: Path) -> list[TemplateInfo]:
    """Read every template folder of ``templates_dir``, sorted by name.

    Folders with neither ``copier.yml`` nor ``template.yaml`` are ignored; any other
    problem is a :class:`TemplateError` naming the file and field.
    """
    if not templates_dir.is_dir():
        raise TemplateError(f"{templates_dir}: the templates folder does not exist")
    found = []
    for folder in sorted(path for path in templates_dir.iterdir() if path.is_dir()):
        markers = [folder / file for file in (*COPIER_FILES, MANIFEST)]
        if any(path.is_file() for path in markers):
            found.append(load_template(folder))
    return found


@contextmanager
def _locked(repo: Path) -> Iterator[None]:
    """Serialize publications of one repository across threads and processes."""
    repo.parent.mkdir(parents=True, exist_ok=True)
    with (repo.parent / f"{repo.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _rev(repo: Path, ref: str) -> str | None:
    try:
        return run_git(
            *("--git-dir", str(repo), "rev-parse", "--verify", "--quiet", "--end-of-options", ref)
        ).strip()
    except GitError:
        return None


def publish(info: TemplateInfo, data_dir: Path) -> PublishedTemplate:
    """Commit the template folder into ``<data_dir>/templates/<name>.git`` and tag it.

    Idempotent; see the module docstring for what happens when content or version change.
    """
    if info.path is None:
        raise TemplateError(f"template {info.name} has no folder to publish")
    # The name and version reach git as a path and a tag: never anything git reads as an option.
    if not _NAME_RE.match(info.name) or not _VERSION_RE.match(info.version):
        raise TemplateError(
            f"template {info.name[:100]!r} version {info.version[:100]!r}: "
            "expected a DNS-1123 name and a version like 1.2.0"
        )
    repo = (data_dir / "templates" / f"{info.name}.git").absolute()
    git = ("--git-dir", str(repo), "--work-tree", str(info.path.absolute()), *_GIT_OPTIONS)
    tag = f"v{info.version}"
    with _locked(repo):
        if not (repo / "HEAD").exists():
            run_git("init", "--quiet", "--bare", "--initial-branch=main", str(repo))
        (repo / "info").mkdir(exist_ok=True)
        (repo / "info" / "exclude").write_text(_IGNORED)
        (repo / "index.lock").unlink(missing_ok=True)  # a crashed run's; we hold the lock
        run_git(*git, "read-tree", "--empty")
        run_git(*git, "add", "--all", "--", ".", cwd=info.path)
        tree = run_git(*git, "write-tree").strip()
        head = _rev(repo, "refs/heads/main^{commit}")
        changed = head is None or _rev(repo, f"{head}^{{tree}}") != tree
        if changed:
            message = f"Publish template {info.name} {info.version}"
            parent = ("-p", head) if head else ()
            new = run_git(*git, "commit-tree", tree, *parent, "-m", message).strip()
            run_git(
                *git, "update-ref", "--end-of-options", "refs/heads/main", new, head or "0" * 40
            )
            head = new
        assert head is not None
        tagged = _rev(repo, f"refs/tags/{tag}^{{commit}}")
        if tagged is None:
            message = f"{info.name} {tag}"
            run_git(*git, "tag", "--annotate", "--message", message, "--end-of-options", tag, head)
            tagged, changed = head, True
        unreleased = _rev(repo, f"{tagged}^{{tree}}") != tree
    if unreleased:
        logger.warning(
            "template %s changed but %s is already published; the tag stays on %s and renders "
            "use it until template.yaml's version is bumped",
            info.name,
            tag,
            tagged[:12],
        )
    return PublishedTemplate(info.name, info.version, repo, tag, tagged, head, changed, unreleased)
