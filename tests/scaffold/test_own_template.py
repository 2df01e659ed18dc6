"""A team's own Copier template: a real third-party Python-package template, registered from git.

``tests/data/copier/python-copier`` (mbercx/python-copier v0.9.0, MIT) asks no ``name``
and ships no Kubernetes manifests. It must scaffold through the API, the create form and
the CLI: the portal's name fills Copier's ``_folder_name``, no Flux wiring is written, only
the checks of its files run, and the CLI's exit code follows the outcome.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from portal.cli import app as cli_app
from portal.config import Settings
from portal.cost.model import Prices
from portal.integrations.git import run_git
from portal.review.checks import CheckStatus, run_manifest_checks
from portal.scaffold.deploys import has_manifests, template_deploys
from portal.scaffold.jobs import run_pending
from portal.scaffold.registry.manifest import TemplateError, load_template
from tests.conftest import ADA, GRACE, REPO, TEST_DATA, csrf_token, runtime

VENDORED = TEST_DATA / "copier" / "python-copier"
TAG = "v0.9.0"
TEMPLATE = "python-copier"
LOOPBACK = "127.0.0.1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, with templates from git over HTTP on the loopback address."""
    return settings.model_copy(
        update={"template_url_schemes": ["https", "http"], "template_url_hosts": [LOOPBACK]}
    )


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    """Serve a git repository of the vendored template, tagged as upstream tags it.

    Over git's plain HTTP protocol from the loopback address, as a git host would serve
    it: services record this URL in ``.copier-answers.yml`` (a ``file://`` URL would be
    a path of the portal's machine, which the semantics check rightly refuses).
    """
    work = tmp_path / "upstream-work"
    shutil.copytree(VENDORED, work)
    options = ("-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t")
    run_git("init", "--quiet", "--initial-branch=main", str(work))
    run_git(*options, "add", "--all")
    run_git(*options, "commit", "--quiet", "-m", "python-copier v0.9.0")
    run_git(*options, "tag", TAG)
    served = tmp_path / "served"
    run_git("clone", "--quiet", "--bare", str(work), str(served / f"{TEMPLATE}.git"))
    run_git("--git-dir", str(served / f"{TEMPLATE}.git"), "update-server-info")
    handler = partial(_Quiet, directory=str(served))
    with ThreadingHTTPServer((LOOPBACK, 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://{LOOPBACK}:{server.server_address[1]}/{TEMPLATE}.git"
        server.shutdown()
        thread.join()


def register(portal: TestClient, url: str) -> None:
    body = {"url": url, "ref": TAG, "name": TEMPLATE}
    created = portal.post("/api/templates", json=body, headers=ADA)
    assert created.status_code == 201, created.text


def tree(settings: Settings, commit: str) -> list[str]:
    remote = settings.data_dir / "gitops" / "remote.git"
    listing = run_git("--git-dir", str(remote), "ls-tree", "-r", "--name-only", commit)
    return listing.split()


def show(settings: Settings, commit: str, path: str) -> str:
    remote = settings.data_dir / "gitops" / "remote.git"
    return run_git("--git-dir", str(remote), "show", f"{commit}:{path}")


def assert_library_change(change: dict[str, Any], settings: Settings, service: str) -> None:
    """A ready change of ``service`` with the package rendered and nothing deployed."""
    assert change["status"] == "ready", change
    files = tree(settings, change["commit"])
    package = service.replace("-", "_")
    folder = f"services/{service}"
    assert f"{folder}/src/{package}/__about__.py" in files  # package_name from _folder_name
    assert f'name = "{service}"' in show(settings, change["commit"], f"{folder}/pyproject.toml")
    assert not [path for path in files if path.startswith("clusters/") and service in path]
    recorded = yaml.safe_load(show(settings, change["commit"], f"{folder}/.copier-answers.yml"))
    assert recorded["package_name"] == service
    render = next(step for step in change["steps"] if step["name"] == "render")
    assert "no Flux wiring" in render["detail"]
    checks = {check["name"]: check["status"] for check in change["checks"]}
    assert checks == {"semantics": "passed"}, change["checks"]


def test_a_template_without_a_name_question_scaffolds_through_the_api(
    portal: TestClient, upstream: str, settings: Settings
) -> None:
    register(portal, upstream)
    answers = {"name": "py-lib", "owner": "platform-team", "description": "Shared helpers"}
    created = portal.post(
        "/api/scaffold", json={"template": TEMPLATE, "answers": answers}, headers=ADA
    )
    assert created.status_code == 202, created.text
    assert run_pending(runtime(portal).context) == 1
    change = portal.get(f"/api/changes/{created.json()['id']}", headers=ADA).json()
    assert_library_change(change, settings, "py-lib")
    readme = show(settings, change["commit"], "services/py-lib/README.md")
    assert "Shared helpers" in readme

    refused = portal.post(
        "/api/scaffold",
        json={"template": TEMPLATE, "answers": {"name": "Py_Lib", "owner": "platform-team"}},
        headers=ADA,
    )
    assert refused.status_code == 422
    assert set(refused.json()["errors"]) == {"name"}  # only the name, not "required"


def test_the_create_form_scaffolds_it(
    portal: TestClient, upstream: str, settings: Settings
) -> None:
    register(portal, upstream)
    page = portal.get(f"/create/{TEMPLATE}", headers=GRACE)
    assert page.status_code == 200 and 'name="package_name"' in page.text
    token = csrf_token(portal, f"/create/{TEMPLATE}")
    # What a browser sends: every field, package_name as pre-filled (its default, empty
    # before a name is typed) beside the hidden record of that pre-fill.
    form = {
        "csrf_token": token,
        "name": "form-lib",
        "owner": "platform-team",
        "package_name": "",
        "_prefill.package_name": "",
        "description": "From the form",
        "docs": "myst",
        "doc_deploy": "nowhere",
    }
    sent = portal.post(f"/create/{TEMPLATE}", data=form, headers=GRACE, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    change_id = sent.headers["location"].rsplit("/", 1)[-1]
    assert run_pending(runtime(portal).context) == 1
    change = portal.get(f"/api/changes/{change_id}", headers=GRACE).json()
    assert_library_change(change, settings, "form-lib")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    monkeypatch.setenv("PORTAL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("PORTAL_CATALOG_PATHS", str(REPO / "catalog"))
    monkeypatch.setenv("PORTAL_GITOPS_SEED_DIR", str(REPO / "gitops-repo"))
    monkeypatch.setenv("PORTAL_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("PORTAL_TEMPLATE_URL_SCHEMES", "https,http")
    monkeypatch.setenv("PORTAL_TEMPLATE_URL_HOSTS", LOOPBACK)
    if settings.database_url:
        monkeypatch.setenv("PORTAL_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("PORTAL_DATABASE_URL", raising=False)
    return settings


def test_cli_exit_codes_follow_the_outcome(cli_env: Settings, upstream: str) -> None:
    runner = CliRunner()
    assert runner.invoke(cli_app, ["init"]).exit_code == 0
    registered = runner.invoke(cli_app, ["templates", "register", upstream, "--ref", TAG])
    assert registered.exit_code == 0, registered.output

    def scaffold(*args: str) -> Any:
        who = ("--owner", "platform-team", "--requester", "ada.lovelace")
        return runner.invoke(cli_app, ["scaffold", *args, *who])

    ready = scaffold(TEMPLATE, "--name", "py-lib")
    assert ready.exit_code == 0, ready.output
    assert "ready" in ready.output and "semantics" in ready.output
    assert "kustomize" not in ready.output

    bad_name = scaffold(TEMPLATE, "--name", "Py_Lib")
    assert bad_name.exit_code == 2 and "must be lower case" in bad_name.output
    unknown = scaffold("no-such-template", "--name", "py-other")
    assert unknown.exit_code == 2 and "not a registered template" in unknown.output
    taken = scaffold(TEMPLATE, "--name", "py-lib")
    assert taken.exit_code == 2 and "already open" in taken.output

    # A real failing check: the description lands in README.md, and a macOS home folder
    # in a committed file is a local-path error of the semantics check.
    local = scaffold(TEMPLATE, "--name", "py-notes", "--set", "description=See /Users/alice/notes")
    assert local.exit_code == 1, local.output
    assert "checks not passed: semantics" in local.output
    assert "failed" in local.output and "local-path" in local.output


# --- deploying or not -------------------------------------------------------------------------


def test_deploys_is_declared_in_the_manifest_or_detected(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    shutil.copytree(VENDORED, folder)
    detected = load_template(folder, manifest=False)
    assert detected.deploys is None
    assert not template_deploys(detected, ["pyproject.toml", "src/lib/__about__.py"])
    assert template_deploys(detected, ["deploy/base/kustomization.yaml"])
    assert not template_deploys(detected, ["deploy/release.sh", "docs/deploy.yaml"])

    manifest = "title: Lib\nowner: platform-team\nversion: 1.0.0\ndeploys: false\n"
    (folder / "template.yaml").write_text(manifest)
    declared = load_template(folder)
    assert declared.deploys is False
    assert not template_deploys(declared, ["deploy/base/kustomization.yaml"])
    (folder / "template.yaml").write_text(manifest.replace("false", "true"))
    assert template_deploys(load_template(folder), ["README.md"])

    (folder / "template.yaml").write_text(manifest.replace("false", "sometimes"))
    with pytest.raises(TemplateError, match=r"template\.yaml:4: field 'deploys' must be true or"):
        load_template(folder)


def test_bundled_templates_are_detected_as_deploying() -> None:
    assert load_template(REPO / "templates" / "fastapi-service").deploys is None
    folder = REPO / "templates" / "fastapi-service" / "template"
    # What a render writes: Copier drops the .jinja suffix.
    files = [
        path.relative_to(folder).as_posix().removesuffix(".jinja") for path in folder.rglob("*")
    ]
    assert has_manifests(files)
    assert not has_manifests(path for path in files if not path.startswith("deploy/"))


def test_a_folder_that_deploys_nothing_gets_only_the_checks_of_its_files(tmp_path: Path) -> None:
    service = tmp_path / "services" / "py-lib"
    service.mkdir(parents=True)
    (service / "pyproject.toml").write_text('[project]\nname = "py-lib"\n')
    (service / "slo.yaml").write_text("not: an SLO\n")  # not a service: not checked
    owners: list[str] = []

    def owner_exists(owner: str) -> bool:
        owners.append(owner)
        return owner == "group:platform-team"

    def names(**kwargs: Any) -> dict[str, CheckStatus]:
        results = run_manifest_checks(service, ["dev", "prod"], owner_exists, Prices(), **kwargs)
        return {result.name: result.status for result in results}

    assert names(deploys=False) == {"semantics": CheckStatus.PASSED}
    catalog = {"kind": "Component", "metadata": {"name": "py-lib"}, "spec": {"owner": "nobody"}}
    (service / "catalog-info.yaml").write_text(yaml.safe_dump(catalog))
    assert names(deploys=False) == {"policy": CheckStatus.FAILED, "semantics": CheckStatus.PASSED}
    assert owners == ["nobody"]
    deploying = names()
    assert deploying["kustomize (dev)"] == CheckStatus.FAILED  # no overlays: as before
    assert {"policy", "slo rules", "semantics"} <= set(deploying)
