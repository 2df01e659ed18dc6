"""Values that reach git are checked and kept apart from options, at every call site.

Each hostile value would make git write a file or run a command if it were read as an
option; every test checks the refusal names the rule AND that the file was not written.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.catalog.locations import LocationError, parse_location
from portal.config import Settings
from portal.integrations.copier_snapshot import snapshot_of
from portal.integrations.git import GitCliReader, GitError
from portal.integrations.git_args import (
    CATALOG_SCHEMES,
    GitArgumentError,
    check_ref,
    check_repo_path,
    url_scheme,
)
from portal.integrations.gitops import GitOpsError, GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from tests.integrations.gitops_support import ANN, git, make_settings, service_files

PAYLOADS = (
    "--output={x}",
    "-c core.pager=touch {x}",
    "--upload-pack=touch {x}",
    "--exec=touch {x}",
    "-u touch {x}",
)
URL_PAYLOADS = ("ext::sh -c touch% {x}", "-u touch {x}", "--upload-pack=touch {x}")


@pytest.fixture
def pwned(tmp_path: Path) -> Iterator[Path]:
    """The file a hostile value tries to make git write; it (or ``pwned:<path>``) never appears."""
    target = tmp_path / "pwned"
    yield target
    written = list(tmp_path.glob("pwned*"))
    assert not written, f"git wrote {written}"


def hostile(template: str, pwned: Path) -> str:
    return template.format(x=pwned)


def make_repo(path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git("init", "--quiet", "--initial-branch=main", str(path))
    git("-C", str(path), "add", "--all")
    git("-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    return path


# --- the checks themselves ------------------------------------------------------------------

REF_CORPUS = [
    "main",
    "v1.2.0",
    "feature/x",
    "HEAD",
    "a@b",
    "é",
    "a..b",
    "a b",
    "a~1",
    "a^",
    "a:b",
    "a?",
    "a*",
    "a[b",
    "a\\b",
    "@",
    "x@{1}",
    "a/.b",
    ".a",
    "a.lock",
    "a/",
    "/a",
    "a//b",
    "a.",
    "a\tb",
    "a\x7fb",
]


@pytest.mark.parametrize("ref", REF_CORPUS)
def test_ref_rules_agree_with_git_check_ref_format(ref: str) -> None:
    by_git = subprocess.run(
        ["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True, check=False
    )
    try:
        check_ref(ref)
        ours = True
    except GitArgumentError:
        ours = False
    assert ours == (by_git.returncode == 0)


@pytest.mark.parametrize("template", PAYLOADS)
def test_refs_starting_with_a_dash_are_refused(template: str, pwned: Path) -> None:
    with pytest.raises(GitArgumentError, match="may not start with '-'"):
        check_ref(hostile(template, pwned))


def test_long_refs_and_bad_paths_are_refused() -> None:
    with pytest.raises(GitArgumentError, match="longer than 255"):
        check_ref("a" * 256)
    for path, rule in [
        ("-x.yaml", "start with '-'"),
        ("/etc/passwd", "relative"),
        ("a/../../b", "'..' segments"),
        ("a\nb", "control characters"),
        ("", "empty"),
    ]:
        with pytest.raises(GitArgumentError, match=rule):
            check_repo_path(path)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ext::sh -c touch% x", "transport::address"),
        ("fd::17", "transport::address"),
        ("-u touch x", "start with '-'"),
        ("--upload-pack=touch x", "start with '-'"),
        ("ssh://-oProxyCommand=touch%20x/r.git", "starts with '-'"),
        ("-oProxyCommand=x@host:r.git", "start with '-'"),
        ("gopher://host/r.git", "gopher URLs are not allowed"),
        ("https://host/r.git\n", "control characters"),
        ("main", "not a git URL"),
    ],
)
def test_urls_git_could_misread_are_refused(url: str, rule: str) -> None:
    with pytest.raises(GitArgumentError, match=rule):
        url_scheme(url, CATALOG_SCHEMES)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("https://git.example.com/org/r.git", "https"),
        ("ssh://git@git.example.com/org/r.git", "ssh"),
        ("git@git.example.com:org/r.git", "ssh"),
        ("file:///srv/git/r.git", "file"),
        ("/srv/git/My Repos/r.git", "file"),
    ],
)
def test_ordinary_urls_are_accepted(url: str, scheme: str) -> None:
    assert url_scheme(url, CATALOG_SCHEMES) == scheme


# --- catalog: GitCliReader, parse_location, import ------------------------------------------


@pytest.mark.parametrize("template", PAYLOADS)
def test_the_catalog_reader_refuses_hostile_refs(
    tmp_path: Path, pwned: Path, template: str
) -> None:
    repo = make_repo(tmp_path / "repo", {"catalog-info.yaml": "x: 1\n"})
    reader = GitCliReader(tmp_path / "cache")
    with pytest.raises(GitError, match="may not start with '-'"):
        reader.read_file(f"file://{repo}", hostile(template, pwned), "catalog-info.yaml")
    with pytest.raises(GitError, match="may not start with '-'"):
        reader.read_file(f"file://{repo}", "main", hostile(template, pwned))
    assert reader.read_file(f"file://{repo}", "main", "catalog-info.yaml") == b"x: 1\n"


@pytest.mark.parametrize("template", URL_PAYLOADS)
def test_the_catalog_reader_refuses_hostile_urls(
    tmp_path: Path, pwned: Path, template: str
) -> None:
    with pytest.raises(GitError, match="is refused"):
        GitCliReader(tmp_path / "cache").read_file(hostile(template, pwned), "main", "a.yaml")


@pytest.mark.parametrize("template", PAYLOADS)
def test_locations_with_hostile_refs_are_refused_naming_the_location(
    pwned: Path, template: str
) -> None:
    text = f"git+file:///srv/repo#{hostile(template, pwned)}:y.sh"
    with pytest.raises(LocationError) as refused:
        parse_location(text)
    assert text[:60] in str(refused.value) and "may not start with '-'" in str(refused.value)


@pytest.mark.parametrize("template", URL_PAYLOADS)
def test_locations_with_hostile_urls_are_refused(pwned: Path, template: str) -> None:
    with pytest.raises(LocationError, match="is refused"):
        parse_location(f"git+{hostile(template, pwned)}#main:a.yaml")


@pytest.mark.parametrize("template", PAYLOADS)
def test_an_imported_hostile_root_is_a_problem(
    session: Session, settings: Settings, pwned: Path, template: str
) -> None:
    root = f"git+file:///srv/repo#{hostile(template, pwned)}:y.sh"
    report = import_locations(session, [root], settings)
    assert report.added == 0
    assert [p.source for p in report.problems] == [root]
    assert "may not start with '-'" in report.problems[0].message


def test_a_location_inside_a_git_catalog_cannot_make_git_write_a_file(
    session: Session, settings: Settings, tmp_path: Path, pwned: Path
) -> None:
    """The reproduction: no admin, just a Location committed to a git-hosted catalog."""
    target_repo = make_repo(tmp_path / "target", {"y.sh": "touch owned\n"})
    catalog = make_repo(
        tmp_path / "catalog",
        {
            "catalog-info.yaml": textwrap.dedent(f"""\
                apiVersion: backstage.io/v1alpha1
                kind: Location
                metadata: {{name: innocent}}
                spec:
                  targets: ["git+file://{target_repo}#--output={pwned}:y.sh"]
                """)
        },
    )
    root = f"git+file://{catalog}#main:catalog-info.yaml"
    report = import_locations(session, [root], settings)
    problems = [(p.source, p.field_path, p.message) for p in report.problems]
    assert len(problems) == 1, problems
    source, field, message = problems[0]
    assert (source, field) == (root, "spec.targets")
    assert f"--output={pwned}" in message and "may not start with '-'" in message


# --- GitOps: every method that takes a ref or a branch --------------------------------------

GITOPS_CALLS: dict[str, Callable[[GitOpsRepo, str, Path], object]] = {
    "resolve": lambda repo, ref, _: repo.resolve(ref),
    "read_file": lambda repo, ref, _: repo.read_file(ref, "README.md"),
    "list_files": lambda repo, ref, _: repo.list_files(ref),
    "diff": lambda repo, ref, _: repo.diff(ref),
    "diff base": lambda repo, ref, _: repo.diff("main", base=ref),
    "changed_files": lambda repo, ref, _: repo.changed_files(ref),
    "export_tree": lambda repo, ref, dest: repo.export_tree(ref, dest),
    "parent_of": lambda repo, ref, _: repo.parent_of(ref),
    "message_of": lambda repo, ref, _: repo.message_of(ref),
    "head_of": lambda repo, ref, _: repo.head_of(ref),
    "branch_exists": lambda repo, ref, _: repo.branch_exists(ref),
    "create_branch": lambda repo, ref, _: repo.create_branch(ref, service_files("a"), "m", ANN),
    "update_branch": lambda repo, ref, _: repo.update_branch(
        ref, "0" * 40, service_files("a"), "m", ANN
    ),
    "merge": lambda repo, ref, _: repo.merge(ref, "m", ANN),
    "delete_branch": lambda repo, ref, _: repo.delete_branch(ref),
}


@pytest.fixture(scope="module")
def shared_repo(tmp_path_factory: pytest.TempPathFactory) -> GitOpsRepo:
    """One GitOps clone for the refusals below (they are refused before git runs)."""
    return bootstrap_gitops(make_settings(tmp_path_factory.mktemp("gitops") / "var"))


@pytest.mark.parametrize("template", PAYLOADS)
@pytest.mark.parametrize("call", sorted(GITOPS_CALLS))
def test_gitops_methods_refuse_hostile_refs(
    shared_repo: GitOpsRepo, tmp_path: Path, pwned: Path, call: str, template: str
) -> None:
    main_before = shared_repo.refresh()
    with pytest.raises(GitOpsError, match=r"'-'|not a branch name the portal may write"):
        GITOPS_CALLS[call](shared_repo, hostile(template, pwned), tmp_path / "export")
    assert not (tmp_path / "export").exists()
    assert shared_repo.refresh() == main_before


def test_gitops_reads_still_work_with_ordinary_refs(shared_repo: GitOpsRepo) -> None:
    main = shared_repo.refresh()
    assert shared_repo.resolve("main") == main
    assert "README.md" in shared_repo.list_files("main")
    assert shared_repo.read_file(main, "README.md")
    assert shared_repo.head_of("main") == main


@pytest.mark.parametrize("template", URL_PAYLOADS)
def test_bootstrap_refuses_a_hostile_remote(tmp_path: Path, pwned: Path, template: str) -> None:
    settings = make_settings(tmp_path / "var", remote=hostile(template, pwned))
    with pytest.raises(GitOpsError, match=r"PORTAL_GITOPS_REMOTE .* is refused"):
        bootstrap_gitops(settings)
    assert not (tmp_path / "var" / "gitops" / "work").exists()


@pytest.mark.parametrize("template", PAYLOADS)
def test_bootstrap_refuses_a_hostile_branch(tmp_path: Path, pwned: Path, template: str) -> None:
    settings = make_settings(tmp_path / "var").model_copy(
        update={"gitops_branch": hostile(template, pwned)}
    )
    with pytest.raises(GitOpsError, match=r"PORTAL_GITOPS_BRANCH .* may not start with '-'"):
        bootstrap_gitops(settings)


def test_a_token_in_a_refused_remote_is_not_repeated(tmp_path: Path) -> None:
    remote = "https://x-access-token:ghp_secret123@git.example.com/org/r.git\x01"
    with pytest.raises(GitOpsError) as refused:
        bootstrap_gitops(make_settings(tmp_path / "var", remote=remote))
    assert "ghp_secret123" not in str(refused.value)


# --- Copier snapshots -----------------------------------------------------------------------


@pytest.mark.parametrize("template", PAYLOADS)
def test_snapshots_never_give_git_a_hostile_ref(tmp_path: Path, pwned: Path, template: str) -> None:
    repo = make_repo(tmp_path / "tpl", {"copier.yml": "name: {type: str}\n"})
    git("-C", str(repo), "tag", "v1.0.0")
    assert snapshot_of(str(repo), hostile(template, pwned), tmp_path / "snaps") is None
    assert not (tmp_path / "snaps").exists()
    assert snapshot_of(str(repo), "v1.0.0", tmp_path / "snaps") is not None
