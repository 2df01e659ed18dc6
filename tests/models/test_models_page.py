"""The Models page and GET /api/prompts: every service's prompts on a real GitOps main."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from portal.integrations.gitops import GitOpsRepo, GitOpsUnavailableError
from portal.integrations.gitops_clone import GitOpsClone
from portal.models.prompts import ModelsRuntime
from tests.conftest import changes_runtime
from tests.databases import SQLITE_ONLY

# Pages over the stores, whose own tests run on both databases (tests/databases.py).
pytestmark = SQLITE_ONLY

AUTHOR = ("Test", "test@example.invalid")
V1 = b"""\
template: |
  Passages: {context}
  Question: {question}
variables: [context, question]
model_parameters: {temperature: 0.1, max_tokens: 512}
note: First version; answers only from the passages.
"""
V2 = V1.replace(b"First version; answers only from the passages.", b"Shorter <b>answers</b>.")
LABELS = b"qa:\n  production: 1\n  staging: 2\n"


def models(client: TestClient) -> ModelsRuntime:
    runtime: ModelsRuntime = client.app.state.models  # type: ignore[attr-defined]
    return runtime


def merge(client: TestClient, branch: str, files: dict[str, bytes]) -> None:
    """Put ``files`` on the GitOps main, as an approved change would, and drop the cache."""
    repo: GitOpsRepo = changes_runtime(client).gitops()
    repo.create_branch(branch, files, f"Add {branch}", AUTHOR)
    repo.merge(branch, f"Merge {branch}", AUTHOR)
    models(client).prompts_cache.clear()


def seed(client: TestClient) -> None:
    merge(
        client,
        "scaffold/assistant",
        {
            "services/assistant/prompts/labels.yaml": LABELS,
            "services/assistant/prompts/qa/v1.yaml": V1,
            "services/assistant/prompts/qa/v2.yaml": V2,
            "services/assistant/rag.yaml": b"prompt: {name: qa, label: production}\n",
        },
    )


def test_the_page_lists_each_prompt_its_versions_and_labels(portal: TestClient) -> None:
    seed(portal)

    html = portal.get("/models").text

    assert 'aria-current="page"' in html and "<h1>Models</h1>" in html
    section = html[html.index('data-service="assistant"') :]
    assert '<span class="badge" data-label="production">production → v1</span>' in section
    assert '<span class="badge" data-label="staging">staging → v2</span>' in section
    assert "First version; answers only from the passages." in section
    assert "Shorter &lt;b&gt;answers&lt;/b&gt;." in section  # a note is text, never markup
    assert "<code>temperature=0.1</code>, <code>max_tokens=512</code>" in section
    assert "<code>{context}</code> <code>{question}</code>" in section
    # No PORTAL_MLFLOW_URL in these settings: the registry section says so, above the prompts.
    assert html.index('id="registry-not-configured"') < html.index('id="prompts"')


def test_the_api_gives_the_same_as_json(portal: TestClient) -> None:
    seed(portal)

    body = portal.get("/api/prompts").json()

    assert re.fullmatch(r"[0-9a-f]{40}", body["commit"])
    assert "GET /api/models" in body["model_registry"]
    [service] = [entry for entry in body["services"] if entry["service"] == "assistant"]
    assert service["problems"] == []
    [prompt] = service["prompts"]
    assert prompt["name"] == "qa" and prompt["labels"] == {"production": 1, "staging": 2}
    first, second = prompt["versions"]
    assert first["version"] == 1 and first["labels"] == ["production"]
    assert first["file"] == "prompts/qa/v1.yaml"
    assert first["model_parameters"] == {"temperature": 0.1, "max_tokens": 512}
    assert first["variables"] == ["context", "question"]
    assert first["template"] == "Passages: {context}\nQuestion: {question}\n"
    assert second["labels"] == ["staging"] and len(second["sha256"]) == 64


def test_a_broken_labels_file_shows_its_problem_never_an_error_page(portal: TestClient) -> None:
    seed(portal)
    merge(
        portal,
        "change/broken/1",
        {
            "services/broken/prompts/labels.yaml": b"qa:\n  production: 3\n  staging: [\n",
            "services/broken/prompts/qa/v1.yaml": V1,
            "services/broken/prompts/summary/v1.yaml": b"template: {x}\n",
        },
    )

    page = portal.get("/models")
    api = portal.get("/api/prompts")

    assert page.status_code == 200 and api.status_code == 200
    broken = page.text[page.text.index('data-service="broken"') :]
    assert "problems in the prompt files" in broken
    assert "prompts/labels.yaml line 3: not valid YAML" in broken
    assert 'data-service="assistant"' in page.text  # the other service is still listed
    [entry] = [e for e in api.json()["services"] if e["service"] == "broken"]
    assert any(p.startswith("prompts/labels.yaml line 3:") for p in entry["problems"])
    assert any(p.startswith("prompts/summary/v1.yaml line 1:") for p in entry["problems"])
    assert [version["version"] for version in entry["prompts"][0]["versions"]] == [1]


def test_without_prompts_the_page_says_so(portal: TestClient) -> None:
    html = portal.get("/models").text
    assert 'id="no-prompts"' in html
    assert portal.get("/api/prompts").json()["services"] == []


def test_a_newer_main_is_read_once_per_commit(portal: TestClient) -> None:
    seed(portal)
    runtime = models(portal)
    first = runtime.prompts()
    runtime.prompts_cache.clear()
    assert runtime.prompts() is first  # same main commit: not read again
    merge(portal, "scaffold/other", {"services/other/prompts/labels.yaml": b"{}\n"})
    second = runtime.prompts()
    assert second.commit != first.commit and second.service("other") is not None


class DownGitOps:
    def __call__(self) -> GitOpsClone:
        raise GitOpsUnavailableError("the GitOps remote did not answer within 10 s")


def test_an_unreachable_gitops_repository_is_a_problem_on_the_page(portal: TestClient) -> None:
    portal.app.state.models = ModelsRuntime(DownGitOps())  # type: ignore[attr-defined]

    page = portal.get("/models")
    api = portal.get("/api/prompts")

    assert page.status_code == 200
    assert "services/*/prompts cannot be read (the GitOps remote did not answer" in page.text
    assert api.status_code == 503 and "did not answer" in api.json()["detail"]


@pytest.mark.parametrize("path", ["/models", "/api/prompts"])
def test_the_pages_need_no_sign_in(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200
