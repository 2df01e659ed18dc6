"""The template registry: bundled templates, their git publication, templates from git URLs.

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

Templates that need Copier's unsafe features (``_tasks``, ``_migrations``,
``_jinja_extensions``), ask ``secret`` questions, use git submodules or carry links that
leave the template are refused: the portal renders with ``unsafe=False``.
"""

from __future__ import annotations

import dataclasses
import fcntl
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from portal.integrations.git import GitError, run_git
from portal.scaffold.questions import Field, QuestionError, parse_questions

logger = logging.getLogger(__name__)

MANIFEST = "template.yaml"
COPIER_FILES = ("copier.yml", "copier.yaml")
MANIFEST_FIELDS = ("title", "description", "tags", "owner", "version")
UNSAFE_SETTINGS = {
    "_tasks": "tasks",
    "_migrations": "migrations",
    "_jinja_extensions": "Jinja extensions",
}
MAX_CONFIG_BYTES = 1_000_000
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$")
_OWNER_RE = re.compile(r"^([a-z]+:)?([a-z0-9-]+/)?[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$")
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?$")
_IGNORED = "__pycache__/\n*.py[co]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n"
_GIT_OPTIONS = (
    *("-c", "user.name=Developer portal", "-c", "user.email=portal@localhost"),
    *("-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.autocrlf=false"),
    *("-c", "core.excludesFile=/dev/null", "-c", "protocol.ext.allow=never"),
)


class TemplateError(ValueError):
    """A template or its manifest is unusable; the message names the file and field."""


class TemplateRefusedError(TemplateError):
    """A template needs a feature the portal never runs (tasks, secrets ...)."""


@dataclasses.dataclass(frozen=True)
class TemplateInfo:
    """A template's manifest and questions; ``path`` is its folder for bundled templates."""

    name: str
    title: str
    description: str
    tags: tuple[str, ...]
    owner: str
    version: str
    questions: tuple[Field, ...]
    path: Path | None = None


@dataclasses.dataclass(frozen=True)
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


def _read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Load a YAML file, returning the data and its node tree (for line numbers)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise TemplateError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
        documents = list(yaml.safe_load_all(text))
        node = yaml.compose(text, Loader=yaml.SafeLoader) if len(documents) == 1 else None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise TemplateError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if len(documents) == 1:
        return documents[0], node
    merged: dict[str, Any] = {}  # Copier merges the documents of a multi-document file
    for document in documents:
        if not isinstance(document, dict):
            raise TemplateError(f"{path}: every YAML document must be a mapping")
        merged.update(document)
    return merged, None


def _line(node: yaml.Node | None, key: str) -> str:
    if isinstance(node, yaml.MappingNode):
        for key_node, _ in node.value:
            if key_node.value == key:
                return f":{key_node.start_mark.line + 1}"
    return ""


def _read_manifest(path: Path) -> dict[str, Any]:
    data, node = _read_yaml(path)
    if not isinstance(data, dict):
        raise TemplateError(f"{path}: must be a mapping with {', '.join(MANIFEST_FIELDS)}")
    for key in data:
        if key not in MANIFEST_FIELDS:
            raise TemplateError(f"{path}{_line(node, str(key))}: field {key!r} is unknown")
    for key in ("title", "owner", "version"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise TemplateError(f"{path}{_line(node, key)}: field {key!r} is required text")
    tags = data.get("tags", [])
    problems = {
        "description": not isinstance(data.get("description", ""), str),
        "tags": not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags),
        "owner": not _OWNER_RE.match(data["owner"]),
        "version": not _VERSION_RE.match(data["version"]),
    }
    hints = {
        "description": "must be text",
        "tags": "must be a list of text",
        "owner": "must be a catalog Group, e.g. platform-team",
        "version": "must be a version like 1.2.0 (quoted if YAML reads it as a number)",
    }
    for key, bad in problems.items():
        if bad:
            raise TemplateError(f"{path}{_line(node, key)}: field {key!r} {hints[key]}")
    return data


def _check_safe(name: str, folder: Path, config: dict[str, Any], source: Path) -> None:
    for key, feature in UNSAFE_SETTINGS.items():
        if config.get(key):
            raise TemplateRefusedError(
                f"template {name} needs {feature} ({key} in {source}); "
                "the portal runs templates with unsafe=False"
            )
    if (folder / ".gitmodules").exists():
        raise TemplateRefusedError(f"template {name} uses git submodules, which are not fetched")
    subdirectory = str(config.get("_subdirectory") or "")
    if subdirectory.startswith("/") or ".." in Path(subdirectory).parts:
        raise TemplateError(f"{source}: field '_subdirectory' must stay inside the template")
    root = folder.resolve()
    for path in folder.rglob("*"):
        if path.is_symlink() and not path.resolve().is_relative_to(root):
            raise TemplateRefusedError(
                f"template {name}: {path.relative_to(folder)} links outside the template"
            )


def load_template(folder: Path, name: str | None = None, *, manifest: bool = True) -> TemplateInfo:
    """Inspect one template folder; ``manifest=False`` makes ``template.yaml`` optional."""
    name = name or folder.name
    if not _NAME_RE.match(name):
        raise TemplateError(f"{folder}: template name {name!r} must be a DNS-1123 label")
    configs = [folder / file for file in COPIER_FILES if (folder / file).is_file()]
    if len(configs) != 1:
        raise TemplateError(f"{folder}: needs exactly one of {' or '.join(COPIER_FILES)}")
    config, _ = _read_yaml(configs[0])
    if not isinstance(config, dict):
        raise TemplateError(f"{configs[0]}: must be a mapping of settings and questions")
    _check_safe(name, folder, config, configs[0])
    try:
        questions = tuple(parse_questions(config, str(configs[0])))
    except QuestionError as exc:
        raise TemplateError(str(exc)) from exc
    for field in questions:
        if field.secret:
            raise TemplateRefusedError(
                f"template {name} asks the secret question {field.name!r} ({configs[0]}); "
                "answers are committed to the GitOps repository, where no secret may be written"
            )
    if (folder / MANIFEST).is_file():
        data = _read_manifest(folder / MANIFEST)
    elif manifest:
        raise TemplateError(
            f"{folder / MANIFEST}: missing (title, description, tags, owner, version)"
        )
    else:
        data = {"title": name, "owner": "", "version": ""}
    return TemplateInfo(
        name=name,
        title=data["title"].strip(),
        description=str(data.get("description", "")).strip(),
        tags=tuple(data.get("tags", [])),
        owner=data["owner"],
        version=data["version"],
        questions=questions,
        path=folder if manifest else None,
    )


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
