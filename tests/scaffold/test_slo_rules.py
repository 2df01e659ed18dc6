"""SLO rules ship with the service: the scaffold and edits of slo.yaml commit its PrometheusRule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from portal.changes.edits import Edit, EditedFiles, EditError
from portal.changes.models import ChangeStatus, CheckRun
from portal.config import Settings
from portal.integrations.kubernetes import kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from portal.review.slo_rules_shipped import (
    KUSTOMIZATION_FILE,
    RULE_FILE,
    RULE_NAME,
    lists_rule,
    shipped_rule,
)
from portal.scaffold.jobs import run_pending
from portal.scaffold.runtime import ScaffoldRuntime
from portal.scaffold.slo_rules import rule_files, with_regenerated_rules, with_slo_rules
from portal.slo.compiler.generate import GenerateOptions, OutputFormat, generate
from tests.conftest import GRACE, require_tool
from tests.conftest import runtime as runtime_of
from tests.databases import PAGES_ON_SQLITE
from tests.proposals.seed import SERVICE, git, remote_of, seed_service
from tests.proposals.test_flow import propose
from tests.review.test_checks import GOOD
from tests.review.test_slo_rules_shipped import promtool_accepts
from tests.scaffold.test_jobs import new_change, runtime, status_of

__all__ = ["runtime"]  # the fixture, used by name

SPEC = f"services/{SERVICE}/slo.yaml"
RULE = f"services/{SERVICE}/{RULE_FILE}"
KUSTOMIZATION = f"services/{SERVICE}/{KUSTOMIZATION_FILE}"


def compiled(spec: str, tmp_path: Path) -> str:
    """What `portal slo generate --format operator slo.yaml` writes for the spec."""
    path = tmp_path / "spec" / "slo.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(spec)
    (output,) = generate([path], GenerateOptions(format=OutputFormat.OPERATOR))
    return output.text


@PAGES_ON_SQLITE
def test_a_scaffold_commits_the_generated_rule_in_its_base(
    runtime: ScaffoldRuntime, tmp_path: Path
) -> None:
    kubectl = require_tool("kubectl")
    change = new_change(runtime, "ruled")
    assert run_pending(runtime.context) == 1
    done = status_of(runtime, change.id)
    assert done.status is ChangeStatus.READY, done.error
    repo, commit = runtime.context.gitops(), done.commit_sha or ""

    spec = repo.read_file(commit, "services/ruled/slo.yaml").decode()
    rule = repo.read_file(commit, f"services/ruled/{RULE_FILE}").decode()
    assert rule == compiled(spec, tmp_path)
    assert lists_rule(repo.read_file(commit, f"services/ruled/{KUSTOMIZATION_FILE}").decode())
    with Session(runtime.context.engine) as session:
        runs = session.exec(select(CheckRun).where(CheckRun.change_id == change.id)).all()
    shipped = {run.name: run for run in runs}["slo rules shipped"]
    assert shipped.status == "passed", shipped.findings

    # Flux applies it: the overlay's build has the PrometheusRule, and promtool takes it.
    repo.export_tree(commit, tmp_path / "tree", ["services/ruled"])
    service = tmp_path / "tree" / "services" / "ruled"
    environments = runtime.environments()
    assert environments == ["dev", "staging", "prod"]
    for env in environments:
        built = kustomize_build(service / "deploy" / "overlays" / env, kubectl=kubectl)
        (found,) = [obj for obj in built if obj["kind"] == "PrometheusRule"]
        assert (found["metadata"]["name"], found["metadata"]["namespace"]) == (
            "ruled-slos",
            "ruled",
        )
        assert found["spec"] == yaml.safe_load(rule)["spec"]
        assert validate_objects([found]) == []
    promtool_accepts(yaml.safe_load(rule), tmp_path)


def test_rendered_files_without_a_spec_or_a_base_get_nothing() -> None:
    spec = (GOOD / "slo.yaml").read_bytes()
    kustomization = b"resources:\n  - deployment.yaml\n"
    assert with_slo_rules("shop", {"services/shop/slo.yaml": spec}) == {
        "services/shop/slo.yaml": spec
    }
    base = {f"services/shop/{KUSTOMIZATION_FILE}": kustomization}
    assert with_slo_rules("shop", base) == base
    both = with_slo_rules("shop", {**base, "services/shop/slo.yaml": spec})
    assert sorted(both) == sorted([*base, "services/shop/slo.yaml", f"services/shop/{RULE_FILE}"])
    assert both[f"services/shop/{KUSTOMIZATION_FILE}"].endswith(f"  - {RULE_NAME}\n".encode())
    # Nothing to write when both are already right.
    assert rule_files("shop", both) == {}
    # A spec that does not compile: the render is committed anyway, the checks say why.
    broken = spec.replace(b"objective: 99.5", b"objective: 100")
    assert with_slo_rules("shop", {**base, "services/shop/slo.yaml": broken}) == {
        **base,
        "services/shop/slo.yaml": broken,
    }


class FakeTree:
    """A fake GitOps tree at one commit: paths to bytes (every file mode 100644)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    def read_file(self, ref: str, path: str) -> bytes:
        return self.files[path]

    def entry_modes(self, ref: str, paths: Any) -> dict[str, str]:
        return {path: "100644" for path in paths if path in self.files}


def test_a_hand_edit_of_the_rule_beside_the_spec_is_refused_naming_the_edit() -> None:
    spec = (GOOD / "slo.yaml").read_text()
    tree = FakeTree({KUSTOMIZATION: (GOOD / KUSTOMIZATION_FILE).read_bytes()})
    new_spec = spec.replace("objective: 99.5", "objective: 99.9")
    edits = [Edit(SPEC, content=new_spec), Edit(RULE, content="kind: PrometheusRule\n")]
    edited = EditedFiles({SPEC: new_spec.encode(), RULE: b"kind: PrometheusRule\n"}, [])
    with pytest.raises(EditError) as refused:
        with_regenerated_rules(tree, "main", SERVICE, edits, edited)
    assert "is generated from slo.yaml" in refused.value.errors["edits[1].path"]
    # Sent exactly as generated, it is taken.
    right = shipped_rule(new_spec, SERVICE).encode()
    taken = with_regenerated_rules(
        tree, "main", SERVICE, edits, EditedFiles({**edited.files, RULE: right}, [])
    )
    assert taken.files[RULE] == right


@pytest.fixture
def seeded(portal: TestClient, settings: Settings, tmp_path: Path) -> Path:
    work = tmp_path / "someone"
    seed_service(portal, settings, work)
    return work


@PAGES_ON_SQLITE
def test_an_edit_of_slo_yaml_through_the_api_regenerates_the_rule(
    portal: TestClient, settings: Settings, seeded: Path, tmp_path: Path
) -> None:
    old_rule = (seeded / RULE).read_text()
    spec = (seeded / SPEC).read_text().replace("objective: 99.5", "objective: 99.9")

    response = propose(portal, GRACE, {"path": SPEC, "content": spec})

    assert response.status_code == 202, response.text
    commit = response.json()["commit"]
    changed = git(remote_of(settings), "diff", "--name-only", f"{commit}^", commit).split()
    assert changed == [RULE, SPEC]  # the kustomization lists it already
    rule = git(remote_of(settings), "show", f"{commit}:{RULE}")
    assert rule == compiled(spec, tmp_path) != old_rule
    assert "sloth_objective: '99.9'" in rule and "'99.5'" not in rule
    assert run_pending(runtime_of(portal).context) == 1
    change = portal.get(response.json()["url"]).json()
    shipped = {check["name"]: check for check in change["checks"]}["slo rules shipped"]
    assert shipped["status"] == "passed", shipped


def test_an_edit_of_slo_yaml_the_generator_rejects_is_refused_naming_the_field(
    portal: TestClient, seeded: Path
) -> None:
    spec = (seeded / SPEC).read_text().replace("objective: 99.5", "objective: 100")
    response = propose(portal, GRACE, {"path": SPEC, "content": spec})
    assert response.status_code == 422, response.text
    message = response.json()["errors"]["edits[0].content"]
    assert message.startswith(f"{SPEC}: its SLO rules cannot be generated")
    assert "objective" in message
