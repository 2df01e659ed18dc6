"""The create form's live checks: one field at a time, the submission's own validation.

``POST /create/{template}/validate?field=<name>`` takes the whole form and answers the
status fragment of that field alone; a derived field the person did not edit (the image
repository, whose default is built from the name) never shows an error of its own; and
sign-in comes before any question.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from portal.app import create_app
from portal.changes.runtime import ChangesRuntime
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.integrations.gitops import GitOpsUnavailableError
from tests.conftest import REPO, csrf_token
from tests.databases import SQLITE_ONLY
from tests.scaffold.test_pages import changes, elements, one

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

ADA = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team,platform-admins"}
HTMX = {"HX-Request": "true"}
TEMPLATE = "fastapi-service"
VALIDATE = f"/create/{TEMPLATE}/validate"
IMAGE_PREFILL = "registry.example.com/services/"  # the image default of an empty name


def _app(settings: Settings, mode: AuthMode) -> TestClient:
    configured = settings.model_copy(
        update={"auth_mode": mode, "catalog_paths": [str(REPO / "catalog")]}
    )
    initialise(configured, gitops=True)
    return TestClient(create_app(configured))


@pytest.fixture
def portal(settings: Settings) -> Iterator[TestClient]:
    """A portal in trusted-header mode: ``ADA`` signs the requests in."""
    with _app(settings, AuthMode.TRUSTED_HEADER) as client:
        yield client


def _form(client: TestClient, **answers: Any) -> dict[str, Any]:
    """Return what the browser posts: the form as pre-filled (image untouched) and ``answers``."""
    return {
        "csrf_token": csrf_token(client, f"/create/{TEMPLATE}"),
        "name": "",
        "owner": "platform-team",
        "system": "",
        "description": "Takes payments",
        "lifecycle": "experimental",
        "port": "8080",
        "enable_metrics": ["false", "true"],
        "environments": ["", "dev"],
        "image_repository": IMAGE_PREFILL,
        "_prefill.image_repository": IMAGE_PREFILL,
        **answers,
    }


def _check(client: TestClient, field: str, form: dict[str, Any]) -> str:
    response = client.post(VALIDATE, params={"field": field}, data=form, headers=HTMX | ADA)
    assert response.status_code == 200, response.text
    assert "<html" not in response.text  # the fragment alone
    return response.text


def _error(fragment: str, field: str) -> str | None:
    """Return the text of the field's error in a status fragment, or None when it has none."""
    if f'id="field-{field}-error"' not in fragment:
        assert "field-error" not in fragment, fragment  # never another field's error
        return None
    return fragment.split("</span>", 1)[1].split("</p>", 1)[0].strip()


def test_a_valid_name_has_no_error_and_is_said_to_be_free(portal: TestClient) -> None:
    fragment = _check(portal, "name", _form(portal, name="payments"))
    assert _error(fragment, "name") is None
    assert 'class="field-note"' in fragment and "payments is free." in fragment


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Bad_Name", "must be lower case"),
        ("", "a name is required"),
        ("a" * 41, "at most 40 characters"),
        ("flux-system", "flux-system"),  # reserved: the platform's own namespace
        ("portal", "the catalog already has a component named portal"),  # taken
    ],
)
def test_an_invalid_or_taken_name_is_an_error_on_the_name(
    portal: TestClient, name: str, message: str
) -> None:
    error = _error(_check(portal, "name", _form(portal, name=name)), "name")
    assert error is not None and message in error


def test_a_name_taken_by_an_open_change_is_an_error_as_typed(portal: TestClient) -> None:
    created = portal.post(
        f"/create/{TEMPLATE}",
        data=_form(portal, name="payments"),
        headers=ADA,
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    error = _error(_check(portal, "name", _form(portal, name="payments")), "name")
    assert error == "a change proposing payments is already open"


def test_every_field_is_checked_by_the_submissions_validators(portal: TestClient) -> None:
    # The template's own validator, the portal's answer rules, the catalog lookups.
    port = _error(_check(portal, "port", _form(portal, port="80")), "port")
    assert port is not None and "must be between 1024 and 65535" in port
    description = _check(portal, "description", _form(portal, description="{{ 7 * 7 }}"))
    assert "must not contain template syntax" in (_error(description, "description") or "")
    assert _error(_check(portal, "owner", _form(portal, owner="")), "owner") == (
        "choose the team that owns the service"
    )
    owner = _error(_check(portal, "owner", _form(portal, owner="nobody")), "owner")
    assert owner == "&#39;nobody&#39; is not a Group in the catalog"  # escaped, named
    assert _error(_check(portal, "port", _form(portal, port="8081")), "port") is None
    # One field is answered, never another's error: the bad port is not the owner's business.
    assert _error(_check(portal, "owner", _form(portal, port="80")), "owner") is None


def test_a_derived_field_left_as_prefilled_never_shows_the_error_of_its_source(
    portal: TestClient,
) -> None:
    bad = _form(portal, name="Bad_Name")  # the image repository default becomes invalid too
    assert _error(_check(portal, "image_repository", bad), "image_repository") is None
    assert "must be lower case" in (_error(_check(portal, "name", bad), "name") or "")
    # A valid name whose derived default is not a valid image repository: told on the name.
    odd = _form(portal, name="a--b")
    assert _error(_check(portal, "image_repository", odd), "image_repository") is None
    error = _error(_check(portal, "name", odd), "name")
    assert error is not None
    assert error.startswith("Image repository derived from it (registry.example.com/services/a--b)")
    assert "must be an image repository" in error


def test_a_derived_field_the_person_edited_shows_its_own_error(portal: TestClient) -> None:
    edited = _form(portal, name="Bad_Name", image_repository="Not A Repo")
    error = _error(_check(portal, "image_repository", edited), "image_repository")
    assert error is not None and "must be an image repository" in error


def test_a_submission_reports_a_derived_error_on_its_source_only(portal: TestClient) -> None:
    response = portal.post(f"/create/{TEMPLATE}", data=_form(portal, name="a--b"), headers=ADA)
    assert response.status_code == 400
    html = response.text
    name = one(html, "input", name="name")
    assert name["aria-invalid"] == "true"
    assert name["aria-describedby"] == "field-name-help field-name-error"
    image = one(html, "input", name="image_repository")
    assert "aria-invalid" not in image and 'id="field-image_repository-error"' not in html
    assert elements(html, "a", href="#field-name")
    assert not elements(html, "a", href="#field-image_repository")
    assert changes(portal) == []


def test_an_unknown_field_is_refused_naming_it(portal: TestClient) -> None:
    form = _form(portal, name="payments")
    response = portal.post(VALIDATE, params={"field": "no_such"}, data=form, headers=ADA)
    assert response.status_code == 422
    assert "&#39;no_such&#39; is not a field of the form of the template fastapi-service" in (
        response.text
    )
    missing = portal.post(VALIDATE, data=form, headers=ADA)
    assert missing.status_code == 422 and "field: &#39;&#39;" in missing.text
    unknown_template = portal.post(
        "/create/no-such-template/validate", params={"field": "name"}, data=form, headers=ADA
    )
    assert unknown_template.status_code == 404


def test_anonymous_checks_and_refreshes_are_refused(portal: TestClient) -> None:
    form = _form(portal, name="payments")
    for path in (f"{VALIDATE}?field=name", f"/create/{TEMPLATE}/form"):
        response = portal.post(path, data=form, headers=HTMX)
        assert response.status_code == 401, path
        assert "Sign in to create a service" in response.text
        assert "payments" not in response.text  # nothing of the form comes back


def test_an_unreachable_gitops_remote_is_a_note_not_an_error(
    portal: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: ChangesRuntime) -> object:
        raise GitOpsUnavailableError("the remote did not answer")

    monkeypatch.setattr(ChangesRuntime, "request_gitops", down)
    fragment = _check(portal, "name", _form(portal, name="payments"))
    assert _error(fragment, "name") is None
    assert "could not be checked now (the remote did not answer)" in fragment
    # The rules that need no remote still apply.
    assert _error(_check(portal, "name", _form(portal, name="Bad_Name")), "name")


def test_the_form_wires_each_field_to_its_live_check(portal: TestClient) -> None:
    html = portal.get(f"/create/{TEMPLATE}", headers=ADA).text
    name = one(html, "input", name="name")
    assert name["hx-post"] == f"{VALIDATE}?field=name"
    assert name["hx-trigger"] == "input changed delay:400ms, change"
    assert (name["hx-target"], name["hx-swap"]) == ("#field-name-status", "innerHTML")
    status = one(html, "div", id="field-name-status")
    assert (status["aria-live"], status["data-status-of"]) == ("polite", "field-name")
    owner = one(html, "select", name="owner")
    assert (owner["hx-post"], owner["hx-trigger"]) == (f"{VALIDATE}?field=owner", "change")
    environments = one(html, "fieldset", id="field-environments")
    assert environments["hx-post"] == f"{VALIDATE}?field=environments"
    assert one(html, "script", src="/static/field-status.js")


def test_the_revise_form_asks_for_sign_in_first_and_has_no_live_checks(
    portal: TestClient,
) -> None:
    created = portal.post(f"/create/{TEMPLATE}", data=_form(portal, name="payments"), headers=ADA)
    [change] = changes(portal)
    assert created.status_code == 200 and change.service == "payments"
    html = portal.get(f"/reviews/{change.id}/revise", headers=ADA).text
    assert one(html, "input", name="name").get("hx-post") is None
    anonymous = portal.get(f"/reviews/{change.id}/revise").text
    assert "Sign in to revise the change" in anonymous
    assert not elements(anonymous, "input", name="name")
    assert "did not receive your identity" in anonymous


def test_anonymous_visitors_are_asked_to_sign_in_before_any_question(
    settings: Settings, tmp_path: Path
) -> None:
    with _app(settings, AuthMode.LOCAL) as client:
        response = client.get(f"/create/{TEMPLATE}")
        assert response.status_code == 200
        html = response.text
        assert "Sign in to create a service" in html
        assert elements(html, "a", href=f"/auth/sign-in?next=/create/{TEMPLATE}")
        assert not elements(html, "input", name="name")
        assert not elements(html, "form", id="scaffold-form")
        assert "Port the container listens on" not in html  # no question at all
        refused = client.post(f"/create/{TEMPLATE}", data=_form(client, name="anon"))
        assert refused.status_code == 401 and changes(client) == []
