"""Templates registered by git URL: pinned, mirrored, stored, offered by every replica."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from portal.cli import app as cli_app
from portal.config import Settings
from portal.integrations.git import run_git
from portal.integrations.git_sources import SourcePolicy
from portal.scaffold.jobs import run_pending
from portal.scaffold.models import RegisteredTemplate
from portal.scaffold.registry import offered
from portal.scaffold.registry.from_git import GitTemplate, register_git_template
from portal.scaffold.registry.manifest import TemplateError, TemplateRefusedError
from portal.scaffold.registry.offered import TemplateRegistry
from tests.conftest import ADA, GRACE, REPO, csrf_token, runtime
from tests.scaffold.registry.test_manifest import COPIER_YML, MANIFEST, write_template

# These tests register templates from local repositories, which the portal refuses unless
# PORTAL_TEMPLATE_URL_SCHEMES lists file (tests/scaffold/registry/test_registration_safety.py).
LOCAL = SourcePolicy.of(["https", "ssh", "file"], [])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with file:// template URLs allowed."""
    return settings.model_copy(update={"template_url_schemes": ["https", "ssh", "file"]})


def make_remote(tmp_path: Path, copier_yml: str = COPIER_YML, manifest: str | None = None) -> Path:
    work = write_template(tmp_path / "remote-src" / "tiny", copier_yml, manifest)
    options = ("-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git("init", "--quiet", "--initial-branch=main", str(work))
    run_git(*options, "add", "--all")
    run_git(*options, "commit", "--quiet", "-m", "first")
    run_git(*options, "tag", "v1.2.0")
    return work


def move_main(work: Path) -> str:
    (work / "template" / "README.md.jinja").write_text("moved upstream\n")
    options = ("-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git(*options, "commit", "--quiet", "-am", "second")
    return run_git("-C", str(work), "rev-parse", "HEAD").strip()


# --- inspection ---------------------------------------------------------------------------


def test_register_git_template_pins_the_commit(tmp_path: Path) -> None:
    work = make_remote(tmp_path)
    tagged = run_git("-C", str(work), "rev-parse", "v1.2.0").strip()
    registered = register_git_template(
        f"file://{work}", "v1.2.0", data_dir=tmp_path / "data", policy=LOCAL
    )
    assert isinstance(registered, GitTemplate)
    assert registered.commit == tagged == registered.vcs_ref
    assert registered.src == str(tmp_path / "data" / "templates" / "git" / "tiny.git")
    assert registered.info.name == "tiny"
    assert registered.info.version == "1.2.0"  # no manifest: from the tag
    assert registered.info.path is None
    assert [q.name for q in registered.info.questions] == ["name", "greeting"]
    by_branch = register_git_template(f"file://{work}", "main", name="tiny-main", policy=LOCAL)
    assert by_branch.commit == tagged and by_branch.info.version == tagged[:12]


def test_register_git_template_reads_an_optional_manifest(tmp_path: Path) -> None:
    work = make_remote(tmp_path, manifest=MANIFEST)
    registered = register_git_template(f"file://{work}", "main", policy=LOCAL)
    assert (registered.info.title, registered.info.version) == ("Tiny", "1.0.0")


def test_register_git_template_refuses_tasks(tmp_path: Path) -> None:
    work = make_remote(tmp_path, copier_yml=COPIER_YML + "_tasks: [make]\n")
    with pytest.raises(TemplateRefusedError, match="template tiny needs tasks"):
        register_git_template(f"file://{work}", "v1.2.0", policy=LOCAL)


@pytest.mark.parametrize(
    ("url", "ref", "message"),
    [
        ("ext::sh -c touch% pwned", "main", "expected a git URL and a ref"),
        ("/some/local/path", "main", "expected a git URL and a ref"),
        ("https://example.com/t.git", "--upload-pack=touch pwned", "expected a git URL"),
        ("https://example.com/t.git", "", "expected a git URL and a ref"),
        ("https://user:s3cret@example.com/t.git", "main", "carries credentials"),
        ("https://example.com/Bad_Name.git", "main", "must be a DNS-1123 label"),
    ],
)
def test_register_git_template_refuses_odd_urls_and_refs(url: str, ref: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as refused:
        register_git_template(url, ref)
    assert "s3cret" not in str(refused.value)


def test_register_git_template_reports_a_missing_ref(tmp_path: Path) -> None:
    work = make_remote(tmp_path)
    with pytest.raises(TemplateError, match=r"cannot fetch v9\.9\.9 from file://"):
        register_git_template(f"file://{work}", "v9.9.9", policy=LOCAL)


# --- the registry: stored, offered everywhere, pinned --------------------------------------


def test_a_registration_is_offered_by_another_replica_and_stays_pinned(
    tmp_path: Path, engine: Engine, settings: Settings
) -> None:
    work = make_remote(tmp_path)
    first = TemplateRegistry(REPO / "templates", tmp_path / "replica-1", engine, LOCAL)
    with Session(engine) as session:
        offered = first.register(session, f"file://{work}", "main", None, "user:default/ada")
    pinned = offered.vcs_ref
    moved = move_main(work)

    second = TemplateRegistry(REPO / "templates", tmp_path / "replica-2", engine, LOCAL)
    found = second.get("tiny")

    assert found is not None and found.vcs_ref == pinned != moved
    assert found.src == str(tmp_path / "replica-2" / "templates" / "git" / "tiny.git")
    assert found.origin == f"file://{work} at main"
    assert {t.info.name for t in second.all()} >= {"tiny", "fastapi-service"}
    with Session(engine) as session:
        row = session.get(RegisteredTemplate, "tiny")
        assert row is not None and row.registered_by == "user:default/ada"
        repinned = first.register(session, f"file://{work}", "main", None, "user:default/ada")
    assert repinned.vcs_ref == moved
    assert second.get("tiny") is not None and second.get("tiny").vcs_ref == moved  # type: ignore[union-attr]


def test_a_pinned_commit_that_vanished_upstream_is_reported_not_offered(
    tmp_path: Path, engine: Engine
) -> None:
    work = make_remote(tmp_path)
    first = TemplateRegistry(REPO / "templates", tmp_path / "replica-1", engine, LOCAL)
    with Session(engine) as session:
        first.register(session, f"file://{work}", "main", None, "user:default/ada")
    options = ("-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git(*options, "commit", "--quiet", "--amend", "-m", "rewritten")  # history rewritten
    run_git("-C", str(work), "tag", "-d", "v1.2.0")
    run_git("-C", str(work), "reflog", "expire", "--expire=now", "--all")
    run_git("-C", str(work), "gc", "--quiet", "--prune=now")

    other = TemplateRegistry(REPO / "templates", tmp_path / "replica-3", engine, LOCAL)

    assert other.get("tiny") is None
    assert "no longer there; register it again" in other.problems["tiny"]


def test_a_template_that_failed_to_load_is_not_fetched_on_every_page(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_remote(tmp_path)
    first = TemplateRegistry(REPO / "templates", tmp_path / "replica-1", engine, LOCAL)
    with Session(engine) as session:
        first.register(session, f"file://{work}", "main", None, "user:default/ada")
    remote = tmp_path / "remote-src" / "tiny"
    remote.rename(tmp_path / "gone")  # the remote is down while another replica starts
    other = TemplateRegistry(REPO / "templates", tmp_path / "replica-2", engine, LOCAL)
    assert other.get("tiny") is None and "tiny" in other.problems
    (tmp_path / "gone").rename(remote)

    # Until the retry time has passed, pages list templates without asking git again.
    assert other.get("tiny") is None
    clock = time.monotonic() + offered.RETRY_FAILED_SECONDS + 1
    monkeypatch.setattr(time, "monotonic", lambda: clock)
    assert other.get("tiny") is not None and "tiny" not in other.problems


def test_bundled_names_cannot_be_taken(tmp_path: Path, engine: Engine) -> None:
    work = make_remote(tmp_path)
    registry = TemplateRegistry(REPO / "templates", tmp_path / "data", engine, LOCAL)
    with Session(engine) as session, pytest.raises(TemplateError, match="bundled template"):
        registry.register(session, f"file://{work}", "main", "fastapi-service", "user:default/a")
    assert not (tmp_path / "data" / "templates" / "git").exists(), "nothing fetched or stored"


# --- API, page and CLI ----------------------------------------------------------------------


def test_admins_register_by_api_and_services_are_scaffolded_from_it(
    portal: TestClient, tmp_path: Path, settings: Settings
) -> None:
    work = make_remote(tmp_path)
    body = {"url": f"file://{work}", "ref": "v1.2.0", "name": "tiny"}

    refused = portal.post("/api/templates", json=body, headers=GRACE)
    assert refused.status_code == 403
    tasks = make_remote(tmp_path / "t", copier_yml=COPIER_YML + "_tasks: [make]\n")
    bad = portal.post("/api/templates", json={"url": f"file://{tasks}", "ref": "main"}, headers=ADA)
    assert bad.status_code == 422 and "needs tasks" in bad.json()["errors"]["url"]
    created = portal.post("/api/templates", json=body, headers=ADA)
    assert created.status_code == 201, created.text
    assert created.json()["origin"] == f"file://{work} at v1.2.0"
    listed = {t["name"]: t for t in portal.get("/api/templates").json()}
    assert listed["tiny"]["version"] == "1.2.0" and listed["fastapi-service"]["origin"] == "bundled"

    answers = {"name": "tiny-svc", "owner": "platform-team", "greeting": "hi"}
    scaffolded = portal.post(
        "/api/scaffold", json={"template": "tiny", "answers": answers}, headers=ADA
    )
    assert scaffolded.status_code == 202, scaffolded.text
    assert run_pending(runtime(portal).context) == 1
    change = portal.get(f"/api/changes/{scaffolded.json()['id']}").json()
    assert change["commit"], change
    remote = settings.data_dir / "gitops" / "remote.git"
    files = run_git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", change["commit"])
    assert "services/tiny-svc/.copier-answers.yml" in files.split()
    # The registered URL and the pinned commit: what `copier update` finds anywhere (the
    # mirror's own `pinned/<sha>` tag, which Copier describes the commit by, exists only here).
    answers_text = run_git(
        "--git-dir",
        str(remote),
        "show",
        f"{change['commit']}:services/tiny-svc/.copier-answers.yml",
    )
    recorded = yaml.safe_load(answers_text)
    pinned = run_git("-C", str(work), "rev-parse", "v1.2.0^{commit}").strip()
    assert (recorded["_src_path"], recorded["_commit"]) == (f"file://{work}", pinned)
    mirror = settings.data_dir / "templates" / "git" / "tiny.git"
    shallow = run_git("--git-dir", str(mirror), "rev-parse", "--is-shallow-repository")
    assert shallow.strip() == "false"  # Copier warns about shallow template clones

    json_ada, json_grace = ({**who, "Content-Type": "application/json"} for who in (ADA, GRACE))
    assert portal.delete("/api/templates/tiny", headers=ADA).status_code == 403  # CSRF
    assert portal.delete("/api/templates/tiny", headers=json_grace).status_code == 403
    assert portal.delete("/api/templates/tiny", headers=json_ada).status_code == 204
    assert portal.delete("/api/templates/tiny", headers=json_ada).status_code == 404
    assert "tiny" not in {t["name"] for t in portal.get("/api/templates").json()}


def test_the_create_page_offers_registration_to_admins(portal: TestClient, tmp_path: Path) -> None:
    work = make_remote(tmp_path)
    assert 'action="/create/-/register"' in portal.get("/create", headers=ADA).text
    assert 'action="/create/-/register"' not in portal.get("/create", headers=GRACE).text
    token = csrf_token(portal, "/create")

    missing = portal.post(
        "/create/-/register",
        data={"csrf_token": token, "url": f"file://{work}", "ref": "v9"},
        headers=ADA,
    )
    assert missing.status_code == 400 and "cannot fetch v9" in missing.text
    assert f'value="file://{work}"' in missing.text
    done = portal.post(
        "/create/-/register",
        data={"csrf_token": token, "url": f"file://{work}", "ref": "v1.2.0"},
        headers=ADA,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/create/tiny"
    page = portal.get("/create", headers=GRACE).text
    assert "/create/tiny" in page and f"file://{work} at v1.2.0" in page
    forbidden = portal.post(
        "/create/-/register",
        data={"csrf_token": token, "url": f"file://{work}", "ref": "v1.2.0"},
        headers=GRACE,
    )
    assert forbidden.status_code == 403


def test_cli_registers_lists_and_unregisters(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = make_remote(tmp_path)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("PORTAL_TEMPLATE_URL_SCHEMES", "https,ssh,file")
    if settings.database_url:
        monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    runner = CliRunner()

    registered = runner.invoke(
        cli_app, ["templates", "register", f"file://{work}", "--ref", "v1.2.0", "--by", "ada"]
    )
    assert registered.exit_code == 0, registered.output
    assert "registered tiny 1.2.0" in registered.output
    listed = runner.invoke(cli_app, ["templates", "list"])
    assert listed.exit_code == 0 and "tiny" in listed.output
    refused = runner.invoke(cli_app, ["templates", "register", "/local/path", "--ref", "main"])
    assert refused.exit_code == 1 and "expected a git URL" in refused.output
    assert runner.invoke(cli_app, ["templates", "unregister", "tiny"]).exit_code == 0
    assert runner.invoke(cli_app, ["templates", "unregister", "tiny"]).exit_code == 1
