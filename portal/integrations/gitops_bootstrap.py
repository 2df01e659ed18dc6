"""Setting up the GitOps remote (a local stand-in or the team's) and the portal's clone."""

from __future__ import annotations

from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_plumbing import RemoteUrl, exclusive, run, seed_bare_remote


def bootstrap_gitops(settings: Settings) -> GitOpsRepo:
    """Set up the GitOps remote and the portal's clone of it, idempotently; return the clone.

    Without ``gitops_remote``, a local bare repository seeded once from ``gitops_seed_dir``
    stands in for the team's GitHub/GitLab repository.
    """
    root = settings.data_dir / "gitops"
    root.mkdir(parents=True, exist_ok=True)
    committer = (settings.git_author_name, settings.git_author_email)
    with exclusive(root / "bootstrap.lock"):
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
        run(work, "config", "remote.origin.url", RemoteUrl.parse(url).public)
        run(
            work,
            "config",
            "--replace-all",
            "remote.origin.fetch",
            "+refs/heads/*:refs/remotes/origin/*",
        )
    repo = GitOpsRepo(work, remote_url=url, main=settings.gitops_branch, committer=committer)
    repo.refresh()
    return repo
