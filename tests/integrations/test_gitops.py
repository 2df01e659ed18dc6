"""The GitOps writer on real git repositories: branches, diffs, merges, races."""

from __future__ import annotations

import fcntl
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portal.config import Settings
from portal.integrations.gitops import (
    BranchExistsError,
    FileExistsOnMainError,
    GitOpsError,
    GitOpsRepo,
    MergeConflictError,
    PathRefusedError,
    RefNotFoundError,
)
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from tests.integrations.gitops_support import (
    ANN,
    REX,
    SEED,
    git,
    make_settings,
    remote_dir,
    remote_sha,
    service_files,
)

# create_branch -------------------------------------------------------------------------


def test_create_branch_adds_files_in_one_commit_on_main(
    settings: Settings, repo: GitOpsRepo
) -> None:
    main = repo.resolve("main")
    files = service_files("alpha") | {
        "services/alpha/run.sh": b"#!/bin/sh\nexec python app.py\n",
        "services/alpha/model.bin": bytes(range(256)),
    }
    sha = repo.create_branch(
        "scaffold/alpha", files, "Add alpha", ANN, executable={"services/alpha/run.sh"}
    )

    assert remote_sha(settings, "refs/heads/scaffold/alpha") == sha
    assert repo.branch_exists("scaffold/alpha")
    assert git("--git-dir", str(remote_dir(settings)), "rev-parse", f"{sha}^@") == main
    assert remote_sha(settings, "main") == main, "creating a branch must not move main"
    for path, content in files.items():
        assert repo.read_file("scaffold/alpha", path) == content
    assert repo.list_files("scaffold/alpha", "services/alpha") == sorted(
        p for p in files if p.startswith("services/")
    )
    modes = git("--git-dir", str(remote_dir(settings)), "ls-tree", "-r", sha, "services/alpha")
    assert "100755 blob" in next(line for line in modes.splitlines() if "run.sh" in line)
    assert "100644 blob" in next(line for line in modes.splitlines() if "app.py" in line)
    info = git("--git-dir", str(remote_dir(settings)), "log", "-1", "--format=%an|%cn|%s", sha)
    assert info == f"Ann Author|{settings.git_author_name}|Add alpha"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside.yaml",
        "services/a/../../../outside",
        "services/./a.yaml",
        "services//a.yaml",
        ".git/hooks/post-update",
        "services/a/.git/config",
        "services/a/.GIT./config",
        "services\\..\\evil",
        "C:/windows",
        "services/a\nb",
        "",
    ],
)
def test_create_branch_refuses_unsafe_paths(repo: GitOpsRepo, path: str) -> None:
    with pytest.raises(PathRefusedError):
        repo.create_branch("scaffold/bad", {path: b"x", "services/ok/a.txt": b"ok"}, "m", ANN)
    assert not repo.branch_exists("scaffold/bad")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("README.md", "already has README.md"),
        ("clusters/dev", "already has clusters/dev"),
        ("README.md/inside.yaml", "README.md is a file"),
    ],
)
def test_create_branch_only_adds_files(repo: GitOpsRepo, path: str, message: str) -> None:
    with pytest.raises(FileExistsOnMainError, match=message):
        repo.create_branch("scaffold/clobber", {path: b"replaced"}, "m", ANN)
    assert not repo.branch_exists("scaffold/clobber")
    assert repo.read_file("main", "README.md") == (SEED / "README.md").read_bytes()


def test_create_branch_refuses_a_file_and_a_directory_of_the_same_name(
    repo: GitOpsRepo,
) -> None:
    with pytest.raises(PathRefusedError, match="services/x"):
        repo.create_branch("scaffold/x", {"services/x": b"", "services/x/a": b""}, "m", ANN)


def test_create_branch_refuses_an_existing_branch(settings: Settings, repo: GitOpsRepo) -> None:
    first = repo.create_branch("scaffold/twice", service_files("twice"), "Add", ANN)
    with pytest.raises(BranchExistsError):
        repo.create_branch("scaffold/twice", service_files("other"), "Add", ANN)
    assert remote_sha(settings, "refs/heads/scaffold/twice") == first


def test_create_branch_refuses_a_branch_another_replica_just_created(
    settings: Settings, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other branch appears after our fetch and points at main, so a plain push of our
    # commit would fast-forward it: only the atomic create-only push notices.
    remote = str(remote_dir(settings))
    real_fetch = repo._fetch_main

    def fetch_then_race() -> str:
        sha = real_fetch()
        git("--git-dir", remote, "update-ref", "refs/heads/scaffold/raced", sha)
        return sha

    monkeypatch.setattr(repo, "_fetch_main", fetch_then_race)
    with pytest.raises(BranchExistsError):
        repo.create_branch("scaffold/raced", service_files("raced"), "Add", ANN)
    assert remote_sha(settings, "refs/heads/scaffold/raced") == remote_sha(settings, "main")


@pytest.mark.parametrize("branch", ["main", "HEAD", "-x", "bad..name", "with space", "a/.b"])
def test_create_branch_refuses_bad_branch_names(repo: GitOpsRepo, branch: str) -> None:
    with pytest.raises(GitOpsError, match="not a branch name"):
        repo.create_branch(branch, {"services/n/a": b"a"}, "m", ANN)


def test_a_crash_before_the_push_leaves_no_branch(
    settings: Settings, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(refspec: str, *options: str) -> str | None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(repo, "_push", crash)
        with pytest.raises(KeyboardInterrupt):
            repo.create_branch("scaffold/crash", service_files("crash"), "Add", ANN)
    assert not repo.branch_exists("scaffold/crash")
    refs = git("--git-dir", str(remote_dir(settings)), "for-each-ref", "--format=%(refname)")
    assert refs == "refs/heads/main"
    # The same request succeeds afterwards: nothing half-done blocks it.
    repo.create_branch("scaffold/crash", service_files("crash"), "Add", ANN)


def test_writes_wait_for_another_process_holding_the_clone_lock(repo: GitOpsRepo) -> None:
    done = threading.Event()

    def write() -> None:
        repo.create_branch("scaffold/locked", service_files("l"), "Add", ANN)
        done.set()

    lock_file = repo.git_dir / "portal-write.lock"
    with open(lock_file, "a+b") as handle:
        # A separate open file description behaves like another process's flock.
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        worker = threading.Thread(target=write)
        worker.start()
        assert not done.wait(0.3), "the write did not wait for the lock"
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    worker.join(10)
    assert done.is_set()
    assert repo.branch_exists("scaffold/locked")


# reads and diff ------------------------------------------------------------------------


def test_diff_shows_added_files_in_full(repo: GitOpsRepo) -> None:
    long_file = "".join(f"line {n}\n" for n in range(40)).encode()
    files = {"services/d/app.py": long_file, "clusters/dev/services/d.yaml": b"kind: X\n"}
    repo.create_branch("scaffold/d", files, "Add d", ANN)

    diff = repo.diff("scaffold/d")
    assert "new file mode 100644" in diff
    assert "+++ b/services/d/app.py" in diff and "+++ b/clusters/dev/services/d.yaml" in diff
    assert all(f"+line {n}\n" in diff for n in range(40))
    assert "README.md" not in diff
    assert repo.changed_files("scaffold/d") == sorted(files)


def test_reads_report_missing_refs_and_files(repo: GitOpsRepo) -> None:
    with pytest.raises(RefNotFoundError):
        repo.read_file("scaffold/none", "README.md")
    with pytest.raises(RefNotFoundError):
        repo.read_file("main", "services/none.yaml")
    with pytest.raises(RefNotFoundError):
        repo.read_file("main", "clusters")
    assert repo.list_files("main", "services/none") == []


def test_export_tree_writes_the_files_of_a_ref(tmp_path: Path, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/e", service_files("e"), "Add e", ANN)
    dest = tmp_path / "export"
    repo.export_tree("scaffold/e", dest)
    exported = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert exported == repo.list_files("scaffold/e")
    assert (dest / "services/e/app.py").read_bytes() == b"print('e')\n"
    with pytest.raises(GitOpsError, match="not empty"):
        repo.export_tree("main", dest)


def test_export_tree_of_some_paths_writes_only_those(tmp_path: Path, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/f", service_files("f"), "Add f", ANN)
    dest = tmp_path / "export"
    repo.export_tree("scaffold/f", dest, ["services/f"])
    exported = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert exported == repo.list_files("scaffold/f", "services/f")
    assert not (dest / "clusters").exists()
    with pytest.raises(GitOpsError, match=r"'\.\.' segments"):
        repo.export_tree("scaffold/f", tmp_path / "other", ["services/../clusters"])


# merge ---------------------------------------------------------------------------------


def test_merge_creates_a_merge_commit_on_main(settings: Settings, repo: GitOpsRepo) -> None:
    main = repo.resolve("main")
    head = repo.create_branch("scaffold/m", service_files("m"), "Add m", ANN)

    merged = repo.merge("scaffold/m", "Merge scaffold/m (approved by rex)", REX)

    assert remote_sha(settings, "main") == merged
    parents = git("--git-dir", str(remote_dir(settings)), "rev-parse", f"{merged}^@").split()
    assert parents == [main, head]
    assert set(service_files("m")) <= set(repo.list_files("main"))
    subject = git("--git-dir", str(remote_dir(settings)), "log", "-1", "--format=%an|%s", merged)
    assert subject == "Rex Reviewer|Merge scaffold/m (approved by rex)"
    # After the merge, the reviewed diff is still available against the branch's base.
    assert repo.changed_files("scaffold/m", base=main) == sorted(service_files("m"))


def test_merging_twice_merges_once(settings: Settings, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/a", service_files("a"), "Add a", ANN)
    repo.create_branch("scaffold/b", service_files("b"), "Add b", ANN)
    merge_a = repo.merge("scaffold/a", "Merge a", REX)
    merge_b = repo.merge("scaffold/b", "Merge b", REX)

    assert repo.merge("scaffold/a", "Merge a again", REX) == merge_a
    assert repo.merge("scaffold/b", "Merge b again", REX) == merge_b
    assert remote_sha(settings, "main") == merge_b
    assert git("--git-dir", str(remote_dir(settings)), "rev-list", "--count", "main") == "5"


def test_merge_conflict_is_a_clear_error(settings: Settings, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/c1", {"services/c/app.py": b"one\n"}, "Add c", ANN)
    repo.create_branch("scaffold/c2", {"services/c/app.py": b"two\n"}, "Add c", ANN)
    repo.merge("scaffold/c1", "Merge c1", REX)
    main = remote_sha(settings, "main")

    with pytest.raises(MergeConflictError, match=r"services/c/app\.py") as conflict:
        repo.merge("scaffold/c2", "Merge c2", REX)
    assert conflict.value.paths == ["services/c/app.py"]
    assert remote_sha(settings, "main") == main


def test_merge_of_a_missing_branch_is_refused(repo: GitOpsRepo) -> None:
    with pytest.raises(RefNotFoundError, match="scaffold/ghost"):
        repo.merge("scaffold/ghost", "Merge", REX)


def test_delete_branch_is_idempotent_and_spares_main(settings: Settings, repo: GitOpsRepo) -> None:
    repo.create_branch("scaffold/gone", service_files("gone"), "Add", ANN)
    assert repo.delete_branch("scaffold/gone") is True
    assert not repo.branch_exists("scaffold/gone")
    assert repo.delete_branch("scaffold/gone") is False
    with pytest.raises(RefNotFoundError):
        repo.resolve("scaffold/gone")
    with pytest.raises(GitOpsError, match="not a branch name"):
        repo.delete_branch("main")
    assert remote_sha(settings, "main") == repo.resolve("main")


# races ---------------------------------------------------------------------------------


def test_a_merge_that_loses_a_push_race_is_retried_on_the_fresh_main(
    settings: Settings, repo: GitOpsRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.create_branch("scaffold/late", service_files("late"), "Add late", ANN)
    clone = settings.data_dir.parent / "other-clone"
    git("clone", "--quiet", str(remote_dir(settings)), str(clone))
    (clone / "services" / "early").mkdir()
    (clone / "services" / "early" / "a.txt").write_text("early\n")
    git("add", ".", cwd=clone)
    git("-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qm", "early", cwd=clone)
    real_fetch = repo._fetch_main
    fetches: list[str] = []

    def fetch_then_someone_pushes() -> str:
        sha = real_fetch()
        fetches.append(sha)
        if len(fetches) == 1:
            git("push", "--quiet", "origin", "HEAD:main", cwd=clone)
        return sha

    monkeypatch.setattr(repo, "_fetch_main", fetch_then_someone_pushes)
    merged = repo.merge("scaffold/late", "Merge late", REX)

    other = git("rev-parse", "HEAD", cwd=clone)
    assert len(fetches) == 2 and fetches[1] == other
    assert git("--git-dir", str(remote_dir(settings)), "rev-parse", f"{merged}^1") == other
    assert remote_sha(settings, "main") == merged
    files = repo.list_files("main")
    assert "services/early/a.txt" in files and "services/late/app.py" in files


def test_a_ref_update_lost_on_the_server_is_retried(settings: Settings, repo: GitOpsRepo) -> None:
    # The hook moves main after the push was accepted but before the ref update: the
    # window only the remote's own compare-and-swap can catch.
    repo.create_branch("scaffold/h", service_files("h"), "Add h", ANN)
    remote = remote_dir(settings)
    main = remote_sha(settings, "main")
    tree = git("--git-dir", str(remote), "rev-parse", "main^{tree}")
    sneaky = git("--git-dir", str(remote), "commit-tree", "-p", main, "-m", "sneaky", tree)
    hook = remote / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\ncat >/dev/null\n"
        'if [ ! -e "$GIT_DIR/raced" ]; then touch "$GIT_DIR/raced"; '
        f"env -u GIT_QUARANTINE_PATH git update-ref refs/heads/main {sneaky}; fi\n"
    )
    hook.chmod(0o755)

    merged = repo.merge("scaffold/h", "Merge h", REX)

    assert (remote / "raced").exists()
    assert git("--git-dir", str(remote), "rev-parse", f"{merged}^1") == sneaky
    assert remote_sha(settings, "main") == merged


def test_twenty_scaffolds_from_two_replicas_all_land(tmp_path: Path, settings: Settings) -> None:
    first = bootstrap_gitops(settings)
    url = remote_dir(settings).resolve().as_uri()
    second = bootstrap_gitops(make_settings(tmp_path / "replica", remote=url))
    replicas = [first, second]
    names = [f"svc-{n:02d}" for n in range(20)]
    start = threading.Barrier(20)

    def create(n: int) -> str:
        start.wait()
        return replicas[n % 2].create_branch(
            f"scaffold/{names[n]}", service_files(names[n]), f"Add {names[n]}", ANN
        )

    def merge(n: int) -> str:
        start.wait()
        return replicas[n % 2].merge(f"scaffold/{names[n]}", f"Merge {names[n]}", REX)

    with ThreadPoolExecutor(max_workers=20) as pool:
        heads = list(pool.map(create, range(20)))
        merges = list(pool.map(merge, range(20)))

    remote = str(remote_dir(settings))
    assert len(set(heads)) == 20 and len(set(merges)) == 20
    on_main = set(first.list_files(first.refresh()))
    for name in names:
        assert set(service_files(name)) <= on_main, f"{name} lost"
    first_parents = git("--git-dir", remote, "rev-list", "--first-parent", "--merges", "main")
    assert sorted(first_parents.split()) == sorted(merges)
    fsck = subprocess.run(
        ["git", "--git-dir", remote, "fsck", "--strict", "--no-dangling"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fsck.returncode == 0 and not fsck.stdout.strip(), fsck.stdout + fsck.stderr
