"""Schemathesis over the portal's own OpenAPI document: no server error, no schema violation.

Every operation of the document is fuzzed (nothing is excluded) with valid and invalid
requests, twice: as an anonymous client of a portal in local mode, and as a platform admin
through the trusted proxy headers with the session's CSRF token. Each response must be no
5xx, have a declared status code and content type, and match the declared body schema.
Requests go in-process through the app's own TestClient (no network, lifespan run once).
The cases are the document's own examples, then valid and invalid generated data, bounded
and derandomized, so a run is repeatable and takes well under a minute. Generated ids only
ever meet 404, so the operations on a change run once more against a real one.

Registering a template would look up the generated host and fetch the URL: templates are
allowed from one ``.invalid`` host only and ``GIT_ALLOW_PROTOCOL=file`` makes git itself
refuse every network transport, so the real registration code runs and nothing leaves
the machine.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.config import Settings
from tests.conftest import ADA, GRACE, csrf_token

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def database_url() -> None:
    """SQLite only: the database layer runs on PostgreSQL in its own tests; here it is HTTP."""
    return None


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Templates only from a host that cannot exist, so no generated host is even looked up."""
    return settings.model_copy(update={"template_url_hosts": ["templates.invalid"]})


@pytest.fixture(autouse=True)
def git_stays_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """And git itself refuses every network transport, should a URL get that far."""
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "file")


def _send(client: TestClient, case: Any, headers: dict[str, str]) -> httpx2.Response:
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    body: dict[str, Any] = {}
    if "json" in kwargs:
        body["content"] = json.dumps(kwargs.pop("json")).encode()
    if "data" in kwargs:
        data = kwargs.pop("data")
        body["content"] = data.encode() if isinstance(data, str) else data
    unknown = set(kwargs) - {"method", "url", "headers", "params", "cookies"}
    assert not unknown, f"the fuzz client cannot send {unknown}"
    return client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs["headers"],
        params=kwargs.get("params") or None,
        **body,
    )


def can_be_invalid(operation: Any) -> bool:
    """Whether a request can break the operation's declared inputs.

    Not without query or body and with only plain string path parameters: any path segment
    is a valid string, so Hypothesis finds no invalid request at all (Unsatisfiable).
    """
    if list(operation.query) or list(operation.body):
        return True
    schemas = [parameter.definition.get("schema", {}) for parameter in operation.path_parameters]
    return any({k: v for k, v in s.items() if k != "title"} != {"type": "string"} for s in schemas)


def strategies(schema: Any, operation: Any, change_id: str | None) -> dict[str, Any]:
    """Name the case sources of an operation: its schema examples, valid and invalid data.

    With ``change_id`` the operations on one change get that real change (they would
    otherwise only ever meet 404) and the others are left out: they ran already.
    """
    fixed = {"change_id": change_id} if change_id else None
    names = {parameter.name for parameter in operation.path_parameters}
    if change_id and "change_id" not in names:
        return {}
    found: dict[str, Any] = {}
    examples = schema.get_strategies_from_examples(operation)
    if examples and not change_id:
        found["examples"] = st.one_of(examples)
    found["valid"] = operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed)
    if can_be_invalid(operation):
        found["invalid"] = operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed)
    return found


def fuzz(client: TestClient, headers: dict[str, str], change_id: str | None = None) -> list[str]:
    """Send bounded generated requests to every operation; return one line per failure kind."""
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    failures: dict[str, str] = {}
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "schemathesis could not read some operations"
    for operation in operations:
        for source, strategy in strategies(schema, operation, change_id).items():
            check_cases(client, headers, strategy, f"{operation.label} [{source}]", failures)
    return sorted(failures.values())


def check_cases(
    client: TestClient, headers: dict[str, str], strategy: Any, label: str, failures: dict[str, str]
) -> None:
    """Send the strategy's cases and record each kind of failure once under ``label``."""

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # every failure, not shrunk ones
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = _send(client, case, headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{label} {failure.title}"
                sent = response.request.content[:300]
                failures.setdefault(
                    key,
                    f"{key}: {response.status_code} {response.text[:300]!r} "
                    f"for {response.request.url} {sent!r}",
                )

    run()


def test_anonymous_requests_conform(client: TestClient) -> None:
    """An outsider: local mode, nobody signed in, no CSRF token."""
    failures = fuzz(client, {})
    assert not failures, "\n".join(failures)


def test_admin_requests_conform(portal: TestClient) -> None:
    """A platform admin through the trusted proxy headers, with the session's CSRF token."""
    headers = {**ADA, "X-CSRF-Token": csrf_token(portal)}
    failures = fuzz(portal, headers)
    assert not failures, "\n".join(failures)
    # Then the operations on one real change, as its author.
    body = example_of(portal, "ScaffoldIn")
    body["answers"] = {**body["answers"], "name": "checkout"}
    created = portal.post("/api/scaffold", json=body, headers=ADA)
    assert created.status_code == 202, created.text
    failures = fuzz(portal, headers, change_id=created.json()["id"])
    assert not failures, "\n".join(failures)


def example_of(client: TestClient, model: str) -> dict[str, Any]:
    """Return the request body the OpenAPI document shows for ``model``."""
    schema = client.get("/openapi.json").json()["components"]["schemas"][model]
    return {
        name: field["examples"][0]
        for name, field in schema["properties"].items()
        if "examples" in field
    }


def test_schema_examples_are_accepted(portal: TestClient) -> None:
    """The examples of the document work on a fresh portal (its own catalog and templates)."""
    scaffold = example_of(portal, "ScaffoldIn")
    accepted = portal.post("/api/scaffold", json=scaffold, headers=ADA)
    assert accepted.status_code == 202, accepted.text
    change = accepted.json()["url"]
    comment = example_of(portal, "DecisionIn")
    sent_back = portal.post(f"{change}/request-changes", json=comment, headers=GRACE)
    assert sent_back.status_code == 409, sent_back.text  # the comment was read: still rendering
    assert "rendering" in sent_back.json()["detail"]
    # Registering needs the example's git server, which a test cannot reach: the refusal
    # must be about fetching that URL, never about the shape of the example.
    register = example_of(portal, "RegisterIn")
    refused = portal.post("/api/templates", json=register, headers=ADA)
    assert refused.status_code == 422, refused.text
    assert set(refused.json()["errors"]) == {"url"}, refused.text
