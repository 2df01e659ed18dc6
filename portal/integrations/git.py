"""Reading files from git repositories (the catalog's ``git+URL#REF:PATH`` locations)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Protocol


class GitError(RuntimeError):
    """Raised when git cannot give us what was asked, with git's own message."""


class GitFileReader(Protocol):
    """Reads one file at one ref of a repository."""

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the bytes of ``path`` at ``ref`` in the repository at ``url``."""
        ...


def run_git(*args: str, cwd: Path | None = None, timeout: float = 120) -> str:
    """Run git without prompts and return its stdout, raising :class:`GitError` on failure."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise GitError(result.stderr.strip() or f"git {args[0]} failed")
    return result.stdout


class GitCliReader:
    """Keeps a bare mirror per repository in a cache folder and reads files with ``git show``."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._fetched: set[str] = set()

    def _mirror(self, url: str) -> Path:
        target = self.cache_dir / hashlib.sha256(url.encode()).hexdigest()[:24]
        if url in self._fetched:
            return target
        if (target / "HEAD").exists():
            run_git("--git-dir", str(target), "fetch", "--prune", "--quiet", "origin")
        else:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            run_git("clone", "--mirror", "--quiet", "--", url, str(target))
        self._fetched.add(url)
        return target

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the file's bytes; :class:`GitError` names the repository, ref and path."""
        mirror = self._mirror(url)
        try:
            result = subprocess.run(
                ["git", "--git-dir", str(mirror), "show", f"{ref}:{path}"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"timed out reading {path} at {ref} from {url}") from exc
        if result.returncode != 0:
            message = result.stderr.decode(errors="replace").strip()
            raise GitError(f"cannot read {path} at {ref} from {url}: {message}")
        return result.stdout


class FakeGitReader:
    """In-memory stand-in for unit tests: ``files[(url, ref, path)] = bytes``."""

    def __init__(self, files: dict[tuple[str, str, str], bytes]) -> None:
        self.files = files

    def read_file(self, url: str, ref: str, path: str) -> bytes:
        """Return the stored bytes or raise :class:`GitError` like the real reader."""
        try:
            return self.files[(url, ref, path)]
        except KeyError:
            raise GitError(f"cannot read {path} at {ref} from {url}: not found") from None
