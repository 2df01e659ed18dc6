"""The Create pages: template list, generated form, htmx re-render, submission."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.app import create_app
from portal.changes.models import Change, ChangeStatus
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.scaffold.jobs import run_pending
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO, csrf_token
from tests.databases import PAGES_ON_SQLITE

pytestmark = PAGES_ON_SQLITE

ADA = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team,platform-admins"}
HTMX = {"HX-Request": "true"}

EVERY_TYPE = """\
name:
  type: str
  help: The service name.
  placeholder: my-service
ratio:
  type: float
  default: 0.25
  help: A fraction of the traffic.
replicas:
  type: int
  default: 3
debug:
  type: bool
  default: false
  help: Verbose logs.
debug_level:
  type: int
  default: 1
  when: "{{ debug }}"
tier:
  type: str
  choices: [bronze, silver, gold]
  default: silver
region:
  type: str
  choices: [eu-north, eu-west, eu-south, us-east, us-west, ap-east]
  default: us-east
features:
  type: str
  multiselect: true
  choices: [logs, metrics, traces]
  default: [metrics]
extra:
  type: yaml
  default: {labels: {team: blue}}
  help: Extra values as YAML.
settings_json:
  type: json
  default: {"retries": 2}
notes:
  type: str
  multiline: true
  default: ""
  placeholder: Anything reviewers should know
motto:
  type: str
  default: "{{ name }} rocks"
"""
MANIFEST = """\
title: Every question type
description: A template asking one question of each kind.
tags: [test, forms]
owner: platform-team
version: 1.2.3
"""


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str, tag: str, **wanted: str) -> list[dict[str, str | None]]:
    """Return the attributes of every ``tag`` whose attributes include ``wanted``."""
    parser = _Elements()
    parser.feed(html)
    wanted = {key.replace("_", "-"): value for key, value in wanted.items()}
    return [
        attrs
        for name, attrs in parser.found
        if name == tag and all(attrs.get(key) == value for key, value in wanted.items())
    ]


def one(html: str, tag: str, **wanted: str) -> dict[str, str | None]:
    found = elements(html, tag, **wanted)
    assert len(found) == 1, (tag, wanted, found)
    return found[0]


@pytest.fixture
def portal(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates" / "fastapi-service", templates / "fastapi-service")
    (templates / "every-type").mkdir()
    (templates / "every-type" / "copier.yml").write_text(EVERY_TYPE)
    (templates / "every-type" / "template.yaml").write_text(MANIFEST)
    configured = settings.model_copy(
        update={
            "auth_mode": AuthMode.TRUSTED_HEADER,
            "catalog_paths": [str(REPO / "catalog")],
            "templates_dir": templates,
        }
    )
    initialise(configured, gitops=True)
    with TestClient(create_app(configured)) as client:
        yield client


def changes(client: TestClient) -> list[Change]:
    runtime: ScaffoldRuntime = client.app.state.scaffold  # type: ignore[attr-defined]
    with Session(runtime.context.engine) as session:
        return list(session.exec(select(Change)).all())


def branches(settings: Settings) -> list[str]:
    remote = settings.data_dir / "gitops" / "remote.git"
    listing = subprocess.run(
        ["git", "--git-dir", str(remote), "branch", "--list", "--format=%(refname:short)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def test_template_list_links_to_each_form(portal: TestClient) -> None:
    html = portal.get("/create").text
    assert "FastAPI service" in html and "Every question type" in html
    assert "A template asking one question of each kind." in html
    assert '<span class="badge">forms</span>' in html and "1.2.3" in html
    assert elements(html, "a", href="/create/every-type")
    assert elements(html, "a", href="/catalog/group/default/platform-team")


def test_form_renders_every_question_type_with_defaults(portal: TestClient) -> None:
    response = portal.get("/create/every-type", headers=ADA)
    assert response.status_code == 200
    html = response.text
    name = one(html, "input", name="name")
    assert name["type"] == "text" and name["placeholder"] == "my-service"
    assert name["aria-required"] == "true"
    ratio = one(html, "input", name="ratio")
    assert (ratio["type"], ratio["step"], ratio["value"]) == ("number", "any", "0.25")
    replicas = one(html, "input", name="replicas")
    assert (replicas["type"], replicas["step"], replicas["value"]) == ("number", "1", "3")
    # The hidden "false" comes first, so an unchecked box is an explicit answer.
    debug = elements(html, "input", name="debug")
    assert [(d["type"], d["value"]) for d in debug] == [("hidden", "false"), ("checkbox", "true")]
    assert "checked" not in debug[1]
    assert not elements(html, "input", name="debug_level")  # its `when` is false for now
    tiers = elements(html, "input", name="tier", type="radio")
    assert [(t["value"], "checked" in t) for t in tiers] == [
        ("bronze", False),
        ("silver", True),
        ("gold", False),
    ]
    one(html, "select", name="region")
    assert "selected" in one(html, "option", value="us-east")
    assert "selected" not in one(html, "option", value="eu-west")
    features = elements(html, "input", name="features")
    assert [(f["type"], f["value"], "checked" in f) for f in features] == [
        ("hidden", "", False),
        ("checkbox", "logs", False),
        ("checkbox", "metrics", True),
        ("checkbox", "traces", False),
    ]
    assert one(html, "textarea", name="extra")["id"] == "field-extra"
    assert ">labels:\n  team: blue</textarea>" in html
    assert ">{\n  &#34;retries&#34;: 2\n}</textarea>" in html  # JSON, escaped
    assert one(html, "textarea", name="notes")["placeholder"] == "Anything reviewers should know"
    # A default computed from other answers is pre-filled and remembered as such.
    assert one(html, "input", name="motto")["value"] == " rocks"
    assert one(html, "input", name="_prefill.motto")["value"] == " rocks"
    # Help is the accessible description of its control.
    assert ratio["aria-describedby"] == "field-ratio-help"
    assert 'id="field-ratio-help" class="hint">A fraction of the traffic.</p>' in html
    # The portal's own fields: owner among the catalog's Groups (yours first), system optional.
    one(html, "select", name="owner")
    assert '<optgroup label="Your teams">' in html
    assert elements(html, "option", value="platform-team") and elements(html, "option", value="sre")
    one(html, "select", name="system")
    assert elements(html, "option", value="observability")
    assert elements(html, "button", type="submit")


def test_changing_a_question_re_renders_only_the_form(portal: TestClient) -> None:
    token = csrf_token(portal, "/create/every-type")
    values = {
        "csrf_token": token,
        "name": "web",
        "debug": ["false", "true"],
        "motto": " rocks",
        "_prefill.motto": " rocks",
        "features": ["", "logs"],
    }
    response = portal.post("/create/every-type/form", data=values, headers=HTMX | ADA)
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<form id="scaffold-form"') and "<html" not in html
    assert 'class="topbar"' not in html
    level = one(html, "input", name="debug_level")
    assert level["value"] == "1"
    assert 'data-when="{{ debug }}"' in html
    assert one(html, "input", name="motto")["value"] == "web rocks"  # the untouched default follows
    assert [f["value"] for f in elements(html, "input", name="features") if "checked" in f] == [
        "logs"
    ]
    edited = portal.post(
        "/create/every-type/form", data={**values, "motto": "my own"}, headers=HTMX | ADA
    ).text
    assert one(edited, "input", name="motto")["value"] == "my own"  # an edited one stays
    full = portal.post("/create/every-type/form", data=values, headers=ADA)
    assert "<html" in full.text and full.headers["vary"] == "HX-Request"


def test_anonymous_visitors_are_asked_to_sign_in(portal: TestClient, settings: Settings) -> None:
    html = portal.get("/create/fastapi-service").text
    assert not elements(html, "button", type="submit")
    assert "did not receive your identity" in html
    token = csrf_token(portal, "/create/fastapi-service")
    values = {"csrf_token": token, "name": "anon", "owner": "platform-team", "description": "x"}
    response = portal.post("/create/fastapi-service", data=values)
    assert response.status_code == 401 and "Sign in" in response.text
    assert changes(portal) == [] and branches(settings) == ["main"]


def test_a_bad_submission_shows_messages_on_the_fields_and_creates_nothing(
    portal: TestClient, settings: Settings
) -> None:
    token = csrf_token(portal, "/create/fastapi-service")
    values = {
        "csrf_token": token,
        "name": "Bad_Name",
        "owner": "",
        "description": "{{ 7 * 7 }}",
        "port": "80",
        "environments": ["", "dev"],
    }
    response = portal.post("/create/fastapi-service", data=values, headers=ADA)
    assert response.status_code == 400
    html = response.text
    assert "The service was not created" in html
    for field in ("name", "owner", "description", "port"):
        assert elements(html, "a", href=f"#field-{field}"), field
    name = one(html, "input", name="name")
    assert name["aria-invalid"] == "true" and name["value"] == "Bad_Name"
    assert name["aria-describedby"] == "field-name-help field-name-error"
    assert 'id="field-name-error"' in html and "must be lower case" in html
    assert one(html, "select", name="owner")["aria-invalid"] == "true"
    assert "choose the team that owns the service" in html
    assert "must not contain template syntax" in html
    assert one(html, "input", name="port")["value"] == "80"
    assert "must be between 1024 and 65535" in html
    checked = [e["value"] for e in elements(html, "input", name="environments") if "checked" in e]
    assert checked == ["dev"]  # what was chosen is kept
    assert changes(portal) == [] and branches(settings) == ["main"]


def test_a_good_submission_creates_the_change_and_redirects_to_it(portal: TestClient) -> None:
    token = csrf_token(portal, "/create/fastapi-service")
    values = {
        "csrf_token": token,
        "name": "payments",
        "owner": "platform-team",
        "system": "",
        "description": "Takes payments",
        "lifecycle": "experimental",
        "port": "8080",
        "enable_metrics": "false",  # unchecked: only the hidden value is sent
        "environments": ["", "dev", "prod"],
        "image_repository": "registry.example.com/services/",
        "_prefill.image_repository": "registry.example.com/services/",
    }
    response = portal.post(
        "/create/fastapi-service", data=values, headers=ADA, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    [change] = changes(portal)
    assert response.headers["location"] == f"/reviews/{change.id}"
    assert change.requester_ref == "user:default/ada.lovelace"
    assert change.answers["environments"] == ["dev", "prod"]
    assert change.answers["enable_metrics"] is False
    assert change.answers["image_repository"] == "registry.example.com/services/payments"
    assert "scrape_interval" not in change.answers
    runtime: ScaffoldRuntime = portal.app.state.scaffold  # type: ignore[attr-defined]
    assert run_pending(runtime.context) == 1
    [done] = changes(portal)
    assert done.status is ChangeStatus.READY
    page = portal.get(response.headers["location"], headers=ADA).text
    assert 'data-status="ready"' in page


def test_an_unknown_template_is_not_found(portal: TestClient) -> None:
    response = portal.get("/create/no-such-template", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "no-such-template" in response.text
