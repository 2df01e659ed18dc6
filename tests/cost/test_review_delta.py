"""The review's cost check on real commits: the change's price sheet and its delta vs main.

A real GitOps repository (bare remote and the portal's clone) holds the air-quality test
service on main and a price sheet for dev; edit changes are committed the way proposals
commit them (``apply_edits`` on a main commit, ``create_edit_branch``), and the check stage
(``check_commit``) builds both sides with the real kustomize.

Hand-computed figures. dev (sheet: 0.04 per core-hour, 0.005 per GiB-hour), HPA minimum 1,
250m CPU and 256Mi: (0.25 x 0.04 + 0.25 x 0.005) x 730 = 8.2125. prod (OpenCost's default
prices), HPA minimum 3, 500m CPU and 1Gi: 3 x 14.631025 = 43.893075.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from portal.changes.edits import Edit, apply_edits
from portal.changes.yaml_objects import Target
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.review.checks import CheckResult, CheckStatus, CheckTools
from portal.review.cost_check import signed
from portal.scaffold.flux import flux_kustomizations
from portal.scaffold.jobs import check_commit
from tests.conftest import require_tool
from tests.integrations.gitops_support import ANN, make_settings
from tests.review.test_checks import GOOD

SERVICE = "air-quality"
ENVIRONMENTS = ["dev", "prod"]
DEV_SHEET = b"# dev runs on spot nodes\ncpu_core_hour: '0.04'\nmemory_gib_hour: '0.005'\n"
DEPLOYMENT = f"services/{SERVICE}/deploy/base/deployment.yaml"
PROD_SCALE = f"services/{SERVICE}/deploy/overlays/prod/scale.yaml"
DEV_OVERLAY = f"services/{SERVICE}/deploy/overlays/dev/kustomization.yaml"
DEPLOYMENT_REF = "Deployment/air-quality-dev/air-quality"


@dataclass
class Repo:
    gitops: GitOpsRepo
    kubectl: Path
    scratch: Path
    count: int = 0

    def folder(self) -> Path:
        self.count += 1
        return self.scratch / f"check-{self.count}"


def service_files(service: str) -> dict[str, bytes]:
    files = {
        f"services/{service}/{path.relative_to(GOOD).as_posix()}": path.read_bytes()
        for path in GOOD.rglob("*")
        if path.is_file()
    }
    files.update(flux_kustomizations(service, ENVIRONMENTS))
    return files


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    kubectl = require_tool("kubectl")
    root = tmp_path_factory.mktemp("delta")
    gitops = bootstrap_gitops(make_settings(root / "var"))
    files = {**service_files(SERVICE), "cost/prices/dev.yaml": DEV_SHEET}
    gitops.create_branch(f"scaffold/{SERVICE}", files, f"Add {SERVICE}", ANN)
    gitops.merge(f"scaffold/{SERVICE}", f"Merge {SERVICE}", ANN)
    return Repo(gitops, kubectl, root / "scratch")


def edit_change(repo: Repo, name: str, *edits: Edit) -> str:
    """Commit ``edits`` on the current main as a proposal does; return the commit."""
    base = repo.gitops.refresh()
    edited = apply_edits(repo.gitops, base, SERVICE, edits)
    return repo.gitops.create_edit_branch(f"change/{SERVICE}/{name}", base, edited.files, name, ANN)


def costs(repo: Repo, commit: str, service: str = SERVICE) -> dict[str, CheckResult]:
    tools = CheckTools(kubectl=repo.kubectl)
    results = check_commit(
        repo.gitops, commit, service, ENVIRONMENTS, lambda _: True, tools, repo.folder()
    )
    return {r.environment or "": r for r in results if r.check == "cost"}


def json_patch(path: str, kind: str, name: str, *operations: dict[str, Any]) -> Edit:
    return Edit(
        path=path,
        patch_type="json6902",
        target=Target(kind=kind, name=name),
        patch=list(operations),
    )


def deltas(result: CheckResult) -> list[tuple[str, str]]:
    return [(f.object, f.message) for f in result.findings if f.rule == "cost-delta"]


def test_lowering_requests_shows_the_saving_to_the_cent(repo: Repo) -> None:
    requests = "/spec/template/spec/containers/0/resources/requests"
    lower = json_patch(
        DEPLOYMENT,
        "Deployment",
        SERVICE,
        {"op": "replace", "path": f"{requests}/cpu", "value": "125m"},
        {"op": "replace", "path": f"{requests}/memory", "value": "128Mi"},
    )

    cost = costs(repo, edit_change(repo, "lower", lower))

    # dev: half of 8.2125 is 4.10625; priced with dev's own sheet, not the defaults.
    assert cost["dev"].status == CheckStatus.PASSED
    assert cost["dev"].summary.startswith("estimated 4.11 USD/month (-4.11 vs main)")
    assert deltas(cost["dev"]) == [
        (
            DEPLOYMENT_REF,
            "1 x (0.25 CPU, 0.25 GiB) -> 1 x (0.125 CPU, 0.125 GiB): "
            "8.21 -> 4.11 USD/month, -4.11 USD/month vs main",
        )
    ]
    # prod patches its own requests over the base's: the edit costs it nothing.
    assert cost["prod"].summary.startswith("estimated 43.89 USD/month (+0.00 vs main)")
    assert deltas(cost["prod"]) == []


def test_raising_replicas_shows_the_worked_check(repo: Repo) -> None:
    raise_minimum = json_patch(
        PROD_SCALE,
        "HorizontalPodAutoscaler",
        SERVICE,
        {"op": "replace", "path": "/spec/minReplicas", "value": 4},
    )

    cost = costs(repo, edit_change(repo, "replicas", raise_minimum))

    # One more replica at 500m CPU and 1 GiB for 730 hours: +14.631025, shown +14.63.
    assert cost["prod"].summary.startswith("estimated 58.52 USD/month (+14.63 vs main)")
    (change,) = deltas(cost["prod"])
    assert change[0] == "Deployment/air-quality-prod/air-quality"
    assert change[1].startswith("3 x (0.5 CPU, 1 GiB) -> 4 x (0.5 CPU, 1 GiB): 43.89 -> 58.52")
    assert change[1].endswith("+14.63 USD/month vs main")
    assert cost["dev"].summary.startswith("estimated 8.21 USD/month (+0.00 vs main)")


def test_an_edit_touching_neither_replicas_nor_requests_shows_zero(repo: Repo) -> None:
    promote = Edit(
        path=DEV_OVERLAY,
        patch_type="strategic-merge",
        target=Target(kind="Kustomization"),
        patch={"images": [{"name": "ghcr.io/example/air-quality", "newTag": "1.5.0"}]},
    )

    cost = costs(repo, edit_change(repo, "promote", promote))

    for environment, figure in (("dev", "8.21"), ("prod", "43.89")):
        assert cost[environment].summary.startswith(
            f"estimated {figure} USD/month (+0.00 vs main)"
        ), cost[environment].summary
        assert deltas(cost[environment]) == []


def test_a_new_service_is_new_against_main(repo: Repo) -> None:
    commit = repo.gitops.create_branch("scaffold/fresh", service_files("fresh"), "Add fresh", ANN)

    cost = costs(repo, commit, "fresh")

    assert cost["dev"].summary.startswith("estimated 8.21 USD/month (+8.21 vs main (new))")
    assert cost["prod"].summary.startswith("estimated 43.89 USD/month (+43.89 vs main (new))")
    assert deltas(cost["dev"]) == []


def test_a_bad_price_sheet_in_the_change_is_an_error_naming_file_and_line(repo: Repo) -> None:
    base = repo.gitops.refresh()
    files = {"cost/prices/dev.yaml": b"cpu_core_hour: '0.04'\nmemory_gib_hour: cheap\n"}
    commit = repo.gitops.create_edit_branch(f"change/{SERVICE}/sheet", base, files, "x", ANN)

    cost = costs(repo, commit)

    assert cost["dev"].status == CheckStatus.ERROR
    assert "cost/prices/dev.yaml:2: memory_gib_hour: must be a number" in cost["dev"].summary
    assert [(f.rule, f.source) for f in cost["dev"].findings] == [
        ("price-sheet", "cost/prices/dev.yaml")
    ]
    assert cost["prod"].status == CheckStatus.PASSED  # prod has no sheet: default prices


def test_a_main_that_does_not_build_gives_no_delta_rather_than_a_wrong_one(repo: Repo) -> None:
    broken = {**service_files("broken"), "services/broken/deploy/base/hpa.yaml": b"- [\n"}
    repo.gitops.create_branch("scaffold/broken", broken, "Add broken", ANN)
    repo.gitops.merge("scaffold/broken", "Merge broken", ANN)
    base = repo.gitops.refresh()
    fixed = {"services/broken/deploy/base/hpa.yaml": (GOOD / "deploy/base/hpa.yaml").read_bytes()}
    commit = repo.gitops.create_edit_branch("change/broken/fix", base, fixed, "fix", ANN)

    cost = costs(repo, commit, "broken")

    assert cost["dev"].status == CheckStatus.PASSED
    assert cost["dev"].summary.startswith(
        "estimated 8.21 USD/month (no delta: deploy/overlays/dev does not build on main"
    )
    assert "vs main" not in cost["dev"].summary


@pytest.mark.parametrize(
    ("amount", "shown"),
    [("-45", "-45.00"), ("14.631025", "+14.63"), ("-0.004", "+0.00"), ("0", "+0.00")],
)
def test_signed_delta_never_shows_minus_zero(amount: str, shown: str) -> None:
    assert signed(Decimal(amount)) == shown
