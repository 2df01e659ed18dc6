"""Template repositories written commit by commit, with fixed dates, for the release tests."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

BASE = 1_700_000_000  # the first commit's date; each next one a day later
DAY = 86_400


def git(repo: Path, *args: str, date: int = BASE) -> str:
    """Run git in ``repo`` as a template author would, with fixed dates."""
    stamp = f"@{date} +0200"  # not UTC, so the dates read back must be converted
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(repo.parent),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Tem Plate",
        "GIT_AUTHOR_EMAIL": "author@example.com",
        "GIT_COMMITTER_NAME": "Tem Plate",
        "GIT_COMMITTER_EMAIL": "author@example.com",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def commit(repo: Path, message: str, files: dict[str, str | bytes | None], date: int) -> str:
    """Write ``files`` (None: delete), commit them all and return the commit."""
    for relative, content in files.items():
        path = repo / relative
        if content is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message, date=date)
    return git(repo, "rev-parse", "HEAD")


def day(n: int) -> datetime:
    """Return the date of the commit made ``n`` days after the first."""
    return datetime.fromtimestamp(BASE + n * DAY, tz=UTC)
