"""Template snapshots: render a template commit without Copier cloning it every time.

For a git template Copier clones the template into a temporary folder on every render and
asks git about the destination for every file it writes: about 30 git commands, some 150 ms
of a 250 ms render here. A snapshot is that same checkout (the same clone and checkout
commands Copier runs, and its ``git describe``), made once per template commit and kept
under the data dir. A render from it runs with git hidden from Copier; the answers file then
gets the two values only a git render records (``_commit`` and ``_src_path``), so the
result is byte for byte what a render from git gives (``tests/integrations/
test_copier_snapshot.py`` proves it for every bundled template).

A template whose output could depend on where it was rendered from (it reads the source
path, the ref or the commit, or writes Copier's answers anywhere but the answers file) or
that has submodules is never snapshotted: it renders from git as before. So does a render
whose answers file does not have the expected shape.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from portal.integrations.git import GitError, run_git
from portal.integrations.git_args import check_sha, is_sha

logger = logging.getLogger(__name__)

FORMAT = 1  # bump when what a snapshot holds changes; old ones are then never read
DEFAULT_ANSWERS_FILE = ".copier-answers.yml"
ABANDONED_BUILD_SECONDS = 3600  # a build folder this old belongs to a process that died
# What differs between a render from git and one from a folder: Copier's `_copier_conf`
# carries the source path, ref and commit hash, and `_copier_answers` the commit and source.
_SOURCE_NAMES = re.compile(r"\b(src_path|vcs_ref\w*|_commit)\b")
_CONF_USE = re.compile(r"_copier_conf(?!\s*\.\s*(?:answers_file|sep|os|dst_path)\b)")
_ANSWERS_USE = re.compile(r"_copier_answers\b")
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]+")  # YAML writes such a path unquoted


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A checkout of one template commit that renders like the git template itself."""

    tree: Path  # the checked-out files, without .git
    src: str  # the git template Copier would have cloned (recorded as `_src_path`)
    commit: str  # what Copier records as `_commit` (`git describe --tags --always`)
    answers_file: str  # where the rendered answers file is, relative to the destination

    def job(self) -> dict[str, str]:
        """Return the snapshot as plain data for a render worker."""
        return {
            "tree": str(self.tree),
            "src": self.src,
            "commit": self.commit,
            "answers_file": self.answers_file,
        }

    @classmethod
    def from_job(cls, data: dict[str, str]) -> Snapshot:
        """Read the snapshot back from :meth:`job`'s plain data."""
        return cls(Path(data["tree"]), data["src"], data["commit"], data["answers_file"])


def _git_dir(src: str) -> Path | None:
    """Return the git directory of a local repository (bare or not); None for anything else."""
    folder = Path(src)
    if (folder / "HEAD").is_file() and (folder / "objects").is_dir():
        return folder
    return folder / ".git" if (folder / ".git").exists() else None  # URLs: Copier mirrors


def _refs(src: str) -> tuple[dict[str, str], str] | None:
    """Return ``{refname: peeled commit}`` of a local git template and its raw listing."""
    git_dir = _git_dir(src)
    if git_dir is None:
        return None
    try:
        listing = run_git(
            f"--git-dir={git_dir}",
            "for-each-ref",
            "--format=%(objectname) %(*objectname) %(refname)",
        )
    except GitError:
        return None
    refs = {}
    for line in listing.splitlines():
        target, *rest = line.split()
        peeled, refname = (rest[0], rest[1]) if len(rest) == 2 else (target, rest[0])
        refs[refname] = peeled
    return refs, listing


@functools.cache
def _copier_version() -> str:
    return importlib.metadata.version("copier")


def _key(src: str, ref: str, commit: str, listing: str) -> str:
    # The tags decide what `git describe` says, and Copier's version how it renders.
    text = f"{FORMAT}\0{_copier_version()}\0{src}\0{ref}\0{commit}\0{listing}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def snapshot_of(src: str, ref: str, root: Path) -> Snapshot | None:
    """Return the snapshot of ``src`` at ``ref`` (a tag or a full commit sha), made if needed.

    Return None when the template must render from git: not a local repository, another
    kind of ref, or a template a snapshot could render differently (see the module doc).
    """
    found = _refs(src)
    if found is None:
        return None
    refs, listing = found
    # A ref only selects a commit from the listing; git itself is only ever given a sha.
    commit = ref if is_sha(ref) else refs.get(f"refs/tags/{ref}")
    if commit is None or not is_sha(commit):
        return None
    folder = root.absolute() / _key(src, ref, commit, listing)
    try:
        if not (folder / "snapshot.json").is_file():
            _build(src, commit, folder)
        meta = json.loads((folder / "snapshot.json").read_text())
        refused, described, answers_file = meta["refused"], meta["commit"], meta["answers_file"]
    except (GitError, OSError, ValueError, KeyError) as exc:
        logger.warning("no snapshot of %s at %s, rendering from git: %s", src, ref, exc)
        return None
    return None if refused else Snapshot(folder / "tree", src, described, answers_file)


def _build(src: str, commit: str, folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
    try:
        tree = building / "tree"
        shallow = run_git("-C", src, "rev-parse", "--is-shallow-repository").strip()
        # The commands of Copier's own clone, so the files and the description are the same.
        run_git("clone", "--quiet", "--no-checkout", "--filter=blob:none", "--", src, str(tree))
        checkout = ("-c", "core.fsmonitor=false", "checkout", "--quiet", "-f")
        run_git(*checkout, check_sha(commit), cwd=tree)
        described = run_git("describe", "--tags", "--always", cwd=tree).strip()
        shutil.rmtree(tree / ".git")
        refused = "a shallow repository" if shallow == "true" else _refusal(tree)
        meta = {
            "format": FORMAT,
            "src": src,
            "commit": described,
            "answers_file": _answers_file(tree) or DEFAULT_ANSWERS_FILE,
            "refused": refused,
        }
        if refused:
            shutil.rmtree(tree)  # only the reason is kept
        (building / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            building.rename(folder)  # atomic: readers see a whole snapshot or none
        except OSError:
            if not (folder / "snapshot.json").is_file():
                raise  # not a concurrent build of the same snapshot that finished first
        else:
            _prune(src, keep=folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _prune(src: str, keep: Path) -> None:
    """Remove the older snapshots of ``src`` (its refs changed) and abandoned builds.

    A render still reading a removed snapshot fails over to git, so this is always safe.
    """
    for other in keep.parent.iterdir():
        if other == keep:
            continue
        if other.name.startswith(".building-"):
            if time.time() - other.stat().st_mtime > ABANDONED_BUILD_SECONDS:
                shutil.rmtree(other, ignore_errors=True)
            continue
        try:
            meta = json.loads((other / "snapshot.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("src") == src:
            shutil.rmtree(other, ignore_errors=True)


def _answers_file(tree: Path) -> str | None:
    for name in ("copier.yml", "copier.yaml"):
        if (tree / name).is_file():
            try:
                config = yaml.safe_load((tree / name).read_text())
            except yaml.YAMLError:
                return None  # Copier will report it; the git render does that
            value = config.get("_answers_file") if isinstance(config, dict) else None
            return value if isinstance(value, str) else None
    return None


def _refusal(tree: Path) -> str | None:
    """Say why a template must render from git, or None when a snapshot renders it the same."""
    if (tree / ".gitmodules").exists():
        return "it has submodules"
    answers_file = _answers_file(tree) or DEFAULT_ANSWERS_FILE
    if "{" in answers_file:
        return "its answers file name is templated"
    for path in sorted(tree.rglob("*")):
        if path.is_dir() or path.is_symlink():
            continue
        relative = path.relative_to(tree).as_posix()
        text = relative + "\n" + path.read_bytes().decode("utf-8", errors="ignore")
        if _SOURCE_NAMES.search(text) or _CONF_USE.search(text):
            return f"{relative} reads where the template was rendered from"
        is_answers = "answers_file" in relative or relative.endswith(answers_file + ".jinja")
        if _ANSWERS_USE.search(text) and not is_answers:
            return f"{relative} writes Copier's answers outside the answers file"
    return None


def render_snapshot(render: Callable[[str], None], snapshot: Snapshot, dest: Path) -> bool:
    """Run ``render(folder)`` (Copier into ``dest``) on the snapshot, with git hidden from it.

    Return True when ``dest`` is now what a render from git gives; False when the render
    failed or its answers file cannot be completed: render from git then, which reports
    any failure in Copier's own words.
    """
    from plumbum import local  # Copier's process runner; imported by render workers only

    with contextlib.suppress(Exception):
        # Without git on the path Copier neither treats the folder as a repository nor
        # runs `git config` in the destination for every file it writes.
        with local.env(PATH=""):
            render(str(snapshot.tree))
        return restore_answers(dest, snapshot)
    return False


def restore_answers(dest: Path, snapshot: Snapshot) -> bool:
    """Write into a render from ``snapshot`` the ``_commit`` and ``_src_path`` git would have.

    Return False (and change nothing) when the answers file is not what Copier's usual
    ``_copier_answers | to_nice_yaml`` makes of a folder template: render from git then.
    """
    path = dest / snapshot.answers_file
    tree = str(snapshot.tree)
    if not path.is_file() or not _PLAIN_PATH.fullmatch(tree):
        return False
    text = path.read_text()
    lines = text.split("\n")
    marker = f"_src_path: {tree}"
    if lines.count(marker) != 1 or any(line.startswith("_commit:") for line in lines):
        return False
    # Dumped as Copier's `to_nice_yaml` does, so quoting and line folding are the same.
    recorded = yaml.dump(
        {"_commit": snapshot.commit, "_src_path": snapshot.src},
        Dumper=yaml.SafeDumper,
        indent=4,
        allow_unicode=True,
        default_flow_style=False,
    )
    new = "\n".join(recorded.rstrip("\n") if line == marker else line for line in lines)
    before = yaml.safe_load(text)
    if not isinstance(before, dict):
        return False
    if yaml.safe_load(new) != {**before, "_commit": snapshot.commit, "_src_path": snapshot.src}:
        return False
    path.write_text(new)
    return True
