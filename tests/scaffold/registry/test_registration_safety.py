"""Registering templates: hostile refs refused, nothing left behind, only allowed sources."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from portal.config import Settings
from portal.integrations.git import run_git
from portal.integrations.git_sources import (
    Resolver,
    SourcePolicy,
    SourceRefusedError,
    vet_source,
)
from portal.scaffold.models import RegisteredTemplate
from portal.scaffold.registry.bundled import discover, publish
from portal.scaffold.registry.from_git import (
    fetch_into_mirror,
    inspect_commit,
    load_registered,
    mirror_dir,
    register_git_template,
)
from portal.scaffold.registry.manifest import TemplateError
from portal.scaffold.registry.offered import TemplateRegistry
from tests.conftest import ADA, REPO
from tests.integrations.test_git_safety import PAYLOADS
from tests.loopback_http import serving
from tests.scaffold.registry.test_from_git import LOCAL, make_remote
from tests.scaffold.registry.test_manifest import COPIER_YML


@pytest.fixture
def pwned(tmp_path: Path) -> Iterator[Path]:
    """The file a hostile ref tries to make git write; it never appears."""
    target = tmp_path / "pwned"
    yield target
    assert not list(tmp_path.glob("pwned*")), "git wrote a file a ref named"


def fake_resolver(table: dict[str, list[str]]) -> Resolver:
    """A stand-in for DNS: ``table[host]`` are the addresses (pure logic, no network)."""

    def resolve(host: str, port: int) -> list[str]:
        return table[host]

    return resolve


def git_dir_entries(data_dir: Path) -> list[str]:
    folder = data_dir / "templates" / "git"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- hostile refs at every registration call site -------------------------------------------


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_refs_are_refused_at_every_template_call_site(
    tmp_path: Path, pwned: Path, payload: str
) -> None:
    work = make_remote(tmp_path)
    ref = payload.format(x=pwned)
    data = tmp_path / "data"
    with pytest.raises(TemplateError, match=r"expected a git URL and a ref \(ref .* '-'\)"):
        register_git_template(f"file://{work}", ref, data_dir=data, policy=LOCAL)
    with pytest.raises(TemplateError, match="may not start with '-'"):
        fetch_into_mirror(f"file://{work}", ref, tmp_path / "m.git")
    with pytest.raises(TemplateError, match="expected a full commit sha"):
        inspect_commit(tmp_path / "m.git", ref, "tiny", "main")
    row = RegisteredTemplate(
        name="tiny",
        url=f"file://{work}",
        ref=ref,
        commit="0" * 40,
        title="t",
        version="1",
        registered_by="user:default/ada",
    )
    with pytest.raises(TemplateError, match="may not start with '-'"):
        load_registered(row, data, LOCAL)
    bundled = discover(REPO / "templates")[0]
    hostile = dataclasses.replace(bundled, version=ref)
    with pytest.raises(TemplateError, match="expected a DNS-1123 name and a version"):
        publish(hostile, data)
    assert git_dir_entries(data) == []


@pytest.mark.parametrize("url", ["ext::sh -c touch% x", "-u touch x", "--upload-pack=touch x"])
def test_hostile_urls_are_refused(url: str) -> None:
    with pytest.raises(TemplateError, match="expected a git URL and a ref"):
        register_git_template(url, "main", policy=LOCAL)


# --- refusals leave nothing behind ----------------------------------------------------------


def test_refused_registrations_leave_no_mirror(tmp_path: Path, engine: Engine) -> None:
    tasks = make_remote(tmp_path / "t", copier_yml=COPIER_YML + "_tasks: [make]\n")
    data = tmp_path / "data"
    registry = TemplateRegistry(REPO / "templates", data, engine, LOCAL)
    with Session(engine) as session:
        with pytest.raises(TemplateError, match="needs tasks"):
            registry.register(session, f"file://{tasks}", "main", "tiny", "user:default/ada")
        with pytest.raises(TemplateError, match="cannot fetch v9"):
            registry.register(session, f"file://{tasks}", "v9", "tiny", "user:default/ada")
    assert git_dir_entries(data) == []


def test_a_refused_repin_keeps_the_registered_mirror(tmp_path: Path, engine: Engine) -> None:
    good = make_remote(tmp_path / "g")
    tasks = make_remote(tmp_path / "t", copier_yml=COPIER_YML + "_tasks: [make]\n")
    data = tmp_path / "data"
    registry = TemplateRegistry(REPO / "templates", data, engine, LOCAL)
    with Session(engine) as session:
        offered = registry.register(session, f"file://{good}", "main", "tiny", "user:default/a")
        with pytest.raises(TemplateError, match="needs tasks"):
            registry.register(session, f"file://{tasks}", "main", "tiny", "user:default/a")
    mirror = mirror_dir(data, "tiny")
    tags = run_git("--git-dir", str(mirror), "tag", "--list").split()
    assert tags == [f"pinned/{offered.vcs_ref}"]  # the refused commit never got in
    assert registry.get("tiny") is not None


# --- schemes, hosts and addresses -----------------------------------------------------------


def test_file_urls_are_refused_unless_the_settings_allow_them(tmp_path: Path) -> None:
    work = make_remote(tmp_path)
    with pytest.raises(TemplateError, match="file URLs are not allowed"):
        register_git_template(f"file://{work}", "main", data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()
    assert register_git_template(f"file://{work}", "main", policy=LOCAL).info.name == "tiny"


def test_the_api_refuses_file_urls_with_default_settings(
    portal: TestClient, tmp_path: Path, settings: Settings
) -> None:
    work = make_remote(tmp_path)
    response = portal.post(
        "/api/templates", json={"url": f"file://{work}", "ref": "main"}, headers=ADA
    )
    assert response.status_code == 422
    assert "file URLs are not allowed" in response.json()["errors"]["url"]
    assert git_dir_entries(settings.data_dir) == []


def test_existing_and_missing_local_paths_get_the_same_answer(tmp_path: Path) -> None:
    work = make_remote(tmp_path)
    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    answers = set()
    for path, ref in [
        (work, "no-such-ref"),
        (not_a_repo, "no-such-ref"),
        (tmp_path / "missing", "no-such-ref"),
        (Path("/etc"), "no-such-ref"),
    ]:
        url = f"file://{path}"
        with pytest.raises(TemplateError) as refused:
            register_git_template(url, ref, name="probe", policy=LOCAL)
        answers.add(str(refused.value).replace(url, "URL"))
    assert answers == {
        "cannot fetch no-such-ref from URL: no such repository or ref, or the portal may not "
        "read it"
    }


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://169.254.169.254/latest/x.git", "link-local"),
        ("https://[fe80::1]/x.git", "link-local"),
        ("ssh://169.254.169.254/x.git", "link-local"),
        ("git@169.254.169.254:x.git", "link-local"),
        ("https://[::ffff:169.254.169.254]/x.git", "link-local"),
        ("https://127.0.0.1/x.git", "loopback, private or reserved"),
        ("https://localhost/x.git", "loopback, private or reserved"),
        ("https://10.1.2.3/x.git", "loopback, private or reserved"),
        ("https://192.168.1.1/x.git", "loopback, private or reserved"),
        ("http://93.184.216.34/x.git", "http URLs are not allowed"),
    ],
)
def test_addresses_that_are_not_public_are_refused(tmp_path: Path, url: str, rule: str) -> None:
    with pytest.raises(TemplateError, match=rule):
        register_git_template(url, "main", name="probe", data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_names_resolving_to_metadata_addresses_are_refused_even_when_listed() -> None:
    resolve = fake_resolver({"metadata.test": ["169.254.169.254"], "git.internal": ["10.0.0.5"]})
    listed = SourcePolicy.of(["https"], ["metadata.test", "git.internal"])
    with pytest.raises(SourceRefusedError, match="link-local"):
        vet_source("https://metadata.test/x.git", listed, resolve)
    with pytest.raises(SourceRefusedError, match="private"):
        vet_source("https://git.internal/x.git", SourcePolicy(), resolve)
    assert vet_source("https://git.internal/x.git", listed, resolve)
    with pytest.raises(SourceRefusedError, match="not in PORTAL_TEMPLATE_URL_HOSTS"):
        vet_source("https://other.test/x.git", listed, resolve)


class Recorder(BaseHTTPRequestHandler):
    """Answers every git request with a redirect elsewhere, and records it."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.headers.get("Host", ""), self.path))
        self.send_response(302)
        self.send_header("Location", "/elsewhere/info/refs?service=git-upload-pack")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def test_git_connects_to_the_address_checked_and_follows_no_redirect(tmp_path: Path) -> None:
    Recorder.seen = []
    resolve = fake_resolver({"git.test": ["127.0.0.1"]})  # "git.test" has no real DNS entry
    policy = SourcePolicy.of(["http"], ["git.test"])
    with serving(Recorder) as port:
        url = f"http://git.test:{port}/tpl.git"
        with pytest.raises(TemplateError, match="cannot fetch main from"):
            register_git_template(
                url,
                "main",
                data_dir=tmp_path / "data",
                policy=policy,
                resolve=resolve,
            )
    assert Recorder.seen == [(f"git.test:{port}", "/tpl.git/info/refs?service=git-upload-pack")]
    assert git_dir_entries(tmp_path / "data") == []


def test_the_settings_parse_and_check_the_allowed_sources(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PORTAL_TEMPLATE_URL_SCHEMES", "https, FILE")
    monkeypatch.setenv("PORTAL_TEMPLATE_URL_HOSTS", "git.example.com,gitlab.internal")
    configured = Settings()
    assert configured.template_url_schemes == ["https", "file"]
    assert configured.template_url_hosts == ["git.example.com", "gitlab.internal"]
    monkeypatch.delenv("PORTAL_TEMPLATE_URL_SCHEMES")
    monkeypatch.delenv("PORTAL_TEMPLATE_URL_HOSTS")
    assert (Settings().template_url_schemes, Settings().template_url_hosts) == (
        ["https", "ssh"],
        [],
    )
    with pytest.raises(ValidationError, match="unknown template URL schemes"):
        Settings(template_url_schemes=["https", "ext"])
