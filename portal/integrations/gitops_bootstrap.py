"""Setting up the GitOps remote (a local stand-in or the team's) and the portal's clone."""

from __future__ import annotations

from pathlib import Path

from portal.config import Settings
from portal.integrations.git_args import (
    CATALOG_SCHEMES,
    GitArgumentError,
    check_branch,
    check_url,
)
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_plumbing import (
    Author,
    GitOpsError,
    RemoteUrl,
    checked_path,
    commit_tree,
    exclusive,
    run,
    write_tree,
)


def checked_remote(url: str, branch: str) -> None:
    """Refuse a GitOps remote URL or branch git could read as an option or a transport."""
    try:
        check_url(url, CATALOG_SCHEMES, "PORTAL_GITOPS_REMOTE")
        check_branch(branch, "PORTAL_GITOPS_BRANCH")
    except GitArgumentError as exc:
        raise GitOpsError(RemoteUrl.parse(url).redact(str(exc))) from None


def bootstrap_gitops(settings: Settings, *, timeout: float | None = None) -> GitOpsRepo:
    """Set up the GitOps remote and the portal's clone of it, idempotently; return the clone.

    Without ``gitops_remote``, a local bare repository seeded once from ``gitops_seed_dir``
    stands in for the team's GitHub/GitLab repository. With ``timeout`` (a request thread)
    the wait for the set-up lock and the first fetch give up after that many seconds.
    """
    root = settings.data_dir / "gitops"
    root.mkdir(parents=True, exist_ok=True)
    committer = (settings.git_author_name, settings.git_author_email)
    if settings.gitops_remote is not None:
        checked_remote(settings.gitops_remote, settings.gitops_branch)
    with exclusive(root / "bootstrap.lock", timeout):
        if settings.gitops_remote is None:
            remote_dir = root / "remote.git"
            seed_bare_remote(
                remote_dir, settings.gitops_seed_dir, settings.gitops_branch, committer
            )
            url = str(remote_dir.resolve())
        else:
            url = settings.gitops_remote
        work = root / "work"
        if not (work / "HEAD").exists():
            run(
                None,
                "init",
                "--quiet",
                "--bare",
                f"--initial-branch={settings.gitops_branch}",
                str(work),
            )
        # Only the credential-free URL is stored; credentials stay in this process.
        run(work, "config", "--end-of-options", "remote.origin.url", RemoteUrl.parse(url).public)
        run(
            work,
            "config",
            "--replace-all",
            "remote.origin.fetch",
            "+refs/heads/*:refs/remotes/origin/*",
        )
        # Keep every fetch as the one pack it arrives as. Unpacked (git's default below 100
        # objects), a fetch writes a commit before its trees and blobs, and another thread
        # that finds the commit (rev-parse, outside the fetch's lock) exports a tree that is
        # not all there: "Could not read <sha>" (seen on CI with two replicas). A pack
        # appears at once, when its index is renamed into place.
        run(work, "config", "fetch.unpackLimit", "1")
    repo = GitOpsRepo(work, remote_url=url, main=settings.gitops_branch, committer=committer)
    (repo if timeout is None else repo.bounded(timeout)).refresh()
    return repo


def seed_bare_remote(remote_dir: Path, seed_dir: Path, branch: str, committer: Author) -> None:
    """Make ``remote_dir`` a bare repository whose ``branch`` is one commit of ``seed_dir``."""
    try:
        check_branch(branch, "PORTAL_GITOPS_BRANCH")
    except GitArgumentError as exc:
        raise GitOpsError(str(exc)) from None
    if not (remote_dir / "HEAD").exists():
        run(None, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(remote_dir))
    # Behave like a hosted remote: no history rewriting, objects checked on receive,
    # and a reflog of main for the audit trail. Each push is kept as the one pack it
    # arrives as: unpacked, every object would be a file of its own.
    for key, value in (
        ("receive.denyNonFastForwards", "true"),
        ("receive.fsckObjects", "true"),
        ("receive.unpackLimit", "1"),
        ("core.logAllRefUpdates", "always"),
    ):
        run(remote_dir, "config", key, value)
    probe = run(
        remote_dir,
        *("rev-parse", "--verify", "--quiet", "--end-of-options", f"refs/heads/{branch}"),
        ok=(0, 1),
    )
    if probe.returncode == 0:
        return
    if not seed_dir.is_dir():
        raise GitOpsError(f"GitOps seed directory {seed_dir} (PORTAL_GITOPS_SEED_DIR) not found")
    files: dict[str, bytes] = {}
    executable: set[str] = set()
    for path in sorted(seed_dir.rglob("*")):
        relative = path.relative_to(seed_dir).as_posix()
        if path.is_symlink():
            raise GitOpsError(f"{path}: symlinks are not allowed in the GitOps seed")
        if ".git" in path.relative_to(seed_dir).parts or path.is_dir():
            continue
        files[checked_path(relative)] = path.read_bytes()
        if path.stat().st_mode & 0o111:
            executable.add(relative)
    tree = write_tree(remote_dir, None, files, executable)
    message = f"Seed the GitOps repository from {seed_dir.name}/\n"
    commit = commit_tree(remote_dir, tree, [], message, committer, committer)
    # An empty old value: only create main, never overwrite one a concurrent seed made.
    run(remote_dir, "update-ref", "--end-of-options", f"refs/heads/{branch}", commit, "")
