"""Chaos experiments: a scaffold runs its template's set through Flux outside production."""

from __future__ import annotations

import yaml
from sqlmodel import Session, select

from portal.changes.models import ChangeStatus, CheckRun
from portal.integrations.kubernetes import kustomize_build
from portal.integrations.kubernetes_schemas import validate_objects
from portal.scaffold.chaos import chaos_kustomizations, experiments_folder
from portal.scaffold.jobs import run_pending
from portal.scaffold.runtime import ScaffoldRuntime
from tests.conftest import REPO, require_tool
from tests.databases import PAGES_ON_SQLITE
from tests.scaffold.test_jobs import new_change, runtime, status_of

__all__ = ["runtime"]  # the fixture, used by name

SEED = REPO / "gitops-repo"


def test_each_environment_but_production_runs_the_templates_experiments() -> None:
    files = chaos_kustomizations("shop", "air-quality-monitor", ["dev", "staging", "prod", "qa"])
    assert sorted(files) == [
        "clusters/dev/chaos/shop.yaml",
        "clusters/qa/chaos/shop.yaml",
        "clusters/staging/chaos/shop.yaml",
    ]
    document = yaml.safe_load(files["clusters/dev/chaos/shop.yaml"])
    assert validate_objects([document]) == []
    assert document["metadata"]["name"] == "shop-chaos"
    assert (
        document["spec"]["path"]
        == "./infrastructure/base/chaos-mesh/experiments/air-quality-monitor"
    )
    assert document["spec"]["dependsOn"] == [{"name": "shop"}]
    assert document["spec"]["postBuild"] == {"substitute": {"SERVICE": "shop"}}
    assert chaos_kustomizations("shop", "air-quality-monitor", ["prod", "production-eu"]) == {}


def test_the_path_holds_experiments_aimed_at_the_service_once_substituted() -> None:
    kubectl = require_tool("kubectl")
    folder = SEED / experiments_folder("fastapi-service")
    built = kustomize_build(folder, kubectl=kubectl)
    text = yaml.safe_dump_all(built).replace("${SERVICE}", "shop")
    objects = list(yaml.safe_load_all(text))
    assert {obj["kind"] for obj in objects} >= {"PodChaos", "NetworkChaos", "StressChaos"}
    assert validate_objects(objects) == []
    assert all("shop" in yaml.safe_dump(obj["spec"]["selector"]) for obj in objects)


@PAGES_ON_SQLITE
def test_a_scaffold_commits_its_chaos_and_the_wiring_check_accepts_it(
    runtime: ScaffoldRuntime,
) -> None:
    change = new_change(runtime, "shaken")
    assert run_pending(runtime.context) == 1
    done = status_of(runtime, change.id)
    assert done.status is ChangeStatus.READY, done.error
    repo, commit = runtime.context.gitops(), done.commit_sha or ""
    chaos = [path for path in repo.list_files(commit, "clusters/") if "/chaos/" in path]
    environments = runtime.environments()
    assert environments is not None and "prod" in environments
    assert sorted(chaos) == sorted(
        f"clusters/{env}/chaos/shaken.yaml" for env in environments if env != "prod"
    )
    with Session(runtime.context.engine) as session:
        runs = {
            run.name: run
            for run in session.exec(select(CheckRun).where(CheckRun.change_id == change.id))
        }
    assert runs["flux wiring"].status == "passed", runs["flux wiring"].findings
