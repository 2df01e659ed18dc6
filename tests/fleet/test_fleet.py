"""A template's fleet: the services on main it generated, how far behind, and local edits.

Real git and real Copier: the fleet test template (tests/data/fleet-template) in three
tagged versions renders the services, which land on the GitOps main as approved changes do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from portal.config import Settings
from portal.fleet.local_edits import LocalEdits, LocalEditsReader, compare
from portal.fleet.scan import generated_from, parse_answers, read_fleet
from portal.fleet.status import fleet_of
from portal.integrations.copier import CopierRenderer, RenderResult
from portal.integrations.copier_answers import RecordedSource
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.scaffold.registry.manifest import load_template
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.slo_rules import with_slo_rules
from tests.conftest import changes_runtime, runtime
from tests.fleet_versions import template_repo
from tests.integrations.gitops_support import make_settings

AUTHOR = ("Fleet Tests", "fleet-tests@example.com")
PAGES_ON_SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _land(repo: GitOpsRepo, branch: str, files: dict[str, bytes]) -> None:
    repo.create_edit_branch(branch, repo.refresh(), files, f"Add {branch}", AUTHOR)
    repo.merge(branch, f"Merge {branch}", AUTHOR)


def _rendered(template: OfferedTemplate, ref: str, service: str, scratch: Path) -> dict[str, bytes]:
    dest = scratch / f"{service}-{ref}"
    answers = {"name": service, "owner": "platform-team"}
    result = CopierRenderer().render(template.src, ref, answers, dest, source=template.source)
    return {f"services/{service}/{path}": (dest / path).read_bytes() for path in result.files}


class CountingRenderer:
    """The real renderer, counting its renders."""

    def __init__(self) -> None:
        self.calls = 0
        self.inner = CopierRenderer()

    def render(self, *args: Any, **kwargs: Any) -> RenderResult:
        self.calls += 1
        return self.inner.render(*args, **kwargs)


@pytest.fixture
def versions(tmp_path: Path) -> OfferedTemplate:
    """The fleet template in v1, v2 and v3, offered as a registered template is."""
    repo = template_repo(tmp_path / "template")
    info = load_template(repo, "fleet-template")
    source = RecordedSource("https://git.example.com/platform/fleet-template.git")
    return OfferedTemplate(info, str(repo), "v3.0.0", "registered", source)


def test_answers_files_that_cannot_be_read_say_why() -> None:
    path = "services/shop/.copier-answers.yml"
    assert parse_answers(path, b"_commit: [v1\n")[1] == "is not valid YAML at line 2"
    assert parse_answers(path, b"- a list\n")[1] == "is not a mapping of answers"
    assert parse_answers(path, b"_commit: v1.0.0\nname: shop\n")[1] == (
        "records no _src_path: Copier cannot update it"
    )
    assert parse_answers(path, b"\xff\xfe")[1] == "is not UTF-8 text"
    recorded, problem = parse_answers(
        path, b"_commit: v1.0.0\n_src_path: https://x/t.git\nname: shop\nreplicas: 2\n"
    )
    assert problem is None and recorded is not None
    assert (recorded.service, recorded.commit, recorded.answers) == (
        "shop",
        "v1.0.0",
        {"name": "shop", "replicas": 2},
    )


def test_a_bundled_template_is_recognised_whatever_host_served_it(
    versions: OfferedTemplate,
) -> None:
    bundled = OfferedTemplate(
        versions.info,
        versions.src,
        "v3.0.0",
        source=RecordedSource("http://a:8000/templates.git/fleet-template.git"),
    )
    assert generated_from(bundled, "https://portal.example.com/templates.git/fleet-template.git")
    assert generated_from(bundled, "http://a:8000/templates.git/fleet-template.git/")
    assert not generated_from(bundled, "https://portal.example.com/templates.git/other.git")
    # A registered template's services record its URL, and only that URL counts.
    assert generated_from(versions, "https://git.example.com/platform/fleet-template")
    assert not generated_from(
        versions, "https://elsewhere.example.com/templates.git/fleet-template.git"
    )


def test_compare_names_modified_added_and_removed_files_and_ignores_the_answers() -> None:
    rendered = {"a": b"1", "b": b"2", ".copier-answers.yml": b"_commit: v1"}
    current = {"a": b"1", "b": b"changed", "c": b"new", ".copier-answers.yml": b"_commit: v2"}
    assert compare(rendered, current) == LocalEdits(modified=("b",), added=("c",))
    assert compare({"a": b"1"}, {}) == LocalEdits(removed=("a",))


@PAGES_ON_SQLITE
def test_the_fleet_lists_versions_lag_local_edits_and_problems(
    versions: OfferedTemplate, session: Session, tmp_path: Path
) -> None:
    repo = bootstrap_gitops(make_settings(tmp_path / "var"))
    scratch = tmp_path / "scratch"
    _land(repo, "scaffold/alpha", _rendered(versions, "v1.0.0", "alpha", scratch))
    _land(repo, "scaffold/beta", _rendered(versions, "v3.0.0", "beta", scratch))
    # The alpha team edits its README; a service of another template, and a broken file.
    readme = repo.read_file("main", "services/alpha/README.md") + b"\nOur own notes.\n"
    _land(
        repo,
        "edit/alpha",
        {
            "services/alpha/README.md": readme,
            "services/other/.copier-answers.yml": b"_commit: v1\n_src_path: https://x/y.git\n",
            "services/broken/.copier-answers.yml": b"_src_path: [\n",
        },
    )
    repo.refresh()
    recorded = read_fleet(repo)
    assert sorted(entry.service for entry in recorded.services) == ["alpha", "beta", "other"]
    assert recorded.problems == {
        "services/broken/.copier-answers.yml": (
            "services/broken/.copier-answers.yml is not valid YAML at line 2"
        )
    }

    reader = LocalEditsReader(CopierRenderer(), tmp_path / "renders")
    fleet = fleet_of(session, repo, recorded, versions, edits=reader)

    assert [v.tag for v in fleet.versions] == ["v3.0.0", "v2.0.0", "v1.0.0"]
    alpha, beta = fleet.services
    assert (alpha.service, alpha.version, alpha.behind) == ("alpha", "v1.0.0", 2)
    assert alpha.local_edits == LocalEdits(modified=("README.md",))
    assert (beta.service, beta.version, beta.behind) == ("beta", "v3.0.0", 0)
    assert beta.local_edits == LocalEdits()
    assert fleet.behind == 1 and alpha.owner == "platform-team"
    # Unchanged folders are not rendered again; a changed one is.
    counting = CountingRenderer()
    reader.renderer = counting
    assert fleet_of(session, repo, recorded, versions, edits=reader).services == fleet.services
    assert counting.calls == 0
    _land(repo, "edit/beta", {"services/beta/NOTES.md": b"ours\n"})
    again = fleet_of(session, repo, read_fleet(repo), versions, edits=reader)
    assert counting.calls == 1 and again.services[1].local_edits == LocalEdits(added=("NOTES.md",))


@PAGES_ON_SQLITE
def test_the_api_and_page_show_a_bundled_templates_services(
    portal: TestClient, settings: Settings, tmp_path: Path
) -> None:
    template = runtime(portal).context.registry.get("fastapi-service")
    assert template is not None
    repo = changes_runtime(portal).gitops()
    answers = {"name": "payments", "owner": "platform-team", "description": "Takes payments"}
    dest = tmp_path / "payments"
    result = runtime(portal).context.renderer.render(
        template.src, template.vcs_ref, answers, dest, source=template.source
    )
    files = {f"services/payments/{p}": (dest / p).read_bytes() for p in result.files}
    _land(repo, "scaffold/payments", with_slo_rules("payments", files))

    answer = portal.get("/api/templates/fastapi-service/fleet")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["newest"] == f"v{template.info.version}"
    [service] = body["services"]
    assert service["service"] == "payments" and service["behind"] == 0
    # The portal's own additions (the shipped SLO rules) are not the team's edits.
    assert service["local_edits"] == {"modified": [], "added": [], "removed": [], "error": None}
    assert portal.get("/api/templates/nope/fleet").status_code == 404
    page = portal.get("/templates/fastapi-service")
    assert page.status_code == 200 and 'hx-get="/templates/fastapi-service/fleet"' in page.text
    section = portal.get("/templates/fastapi-service/fleet", headers={"HX-Request": "true"}).text
    assert section.lstrip().startswith('<section class="card" id="fleet"')
    assert 'data-service="payments"' in section and "up to date" in section
    assert portal.get("/templates/nope").status_code == 404
    # The catalog's entity page loads its Template section from the fleet's route.
    entity = portal.get("/catalog/component/default/prometheus").text
    assert 'hx-get="/fleet/services/prometheus"' in entity
    payments = portal.get("/fleet/services/payments", headers={"HX-Request": "true"}).text
    assert 'data-template="fastapi-service"' in payments and "up to date" in payments
