"""The model pin of an environment: read from a real GitOps repository, written as edits.

The edits are applied to main with the portal's own edit code and the overlay is built
with the real kustomize, so a pin that would not reach the Deployment fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portal.changes.edits import apply_edits
from portal.changes.overlay_patches import OverlayRefusedError
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.kubernetes import kustomize_build
from portal.models.pins import PIN_FILE, pin_edits, pin_text, read_pin, read_pins
from tests.integrations.gitops_support import make_settings
from tests.proposals.seed import push_to_main, remote_of

SERVICE = "munich-air"
MODEL = f"{SERVICE}-air-quality"
BASE = f"services/{SERVICE}/deploy/base"
OVERLAYS = f"services/{SERVICE}/deploy/overlays"

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {SERVICE}
spec:
  selector:
    matchLabels: {{app: {SERVICE}}}
  template:
    metadata:
      labels: {{app: {SERVICE}}}
    spec:
      containers:
        - name: app
          image: example.invalid/app:1
          env:
            - name: SERVICE_NAME
              value: {SERVICE}
"""


def overlay(patches: str = "") -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ../../base\n" + patches
    )


@pytest.fixture
def repo(tmp_path: Path) -> tuple[GitOpsRepo, str]:
    """A GitOps repository whose main has the service: prod pinned to 3, dev unpinned."""
    settings = make_settings(tmp_path / "var")
    gitops = bootstrap_gitops(settings)
    assert remote_of(settings).is_dir()
    push_to_main(
        settings,
        tmp_path / "work",
        {
            f"{BASE}/deployment.yaml": DEPLOYMENT,
            f"{BASE}/kustomization.yaml": "resources:\n  - deployment.yaml\n",
            f"{OVERLAYS}/prod/kustomization.yaml": overlay(f"patches:\n  - path: {PIN_FILE}\n"),
            f"{OVERLAYS}/prod/{PIN_FILE}": pin_text(SERVICE, "prod", MODEL, "3"),
            f"{OVERLAYS}/dev/kustomization.yaml": overlay(),
        },
        "the service",
    )
    return gitops, gitops.refresh()


def test_pins_are_read_per_environment_with_overlay(repo: tuple[GitOpsRepo, str]) -> None:
    gitops, main = repo
    pins = read_pins(gitops, main, SERVICE, ["dev", "staging", "prod"])
    assert sorted(pins) == ["dev", "prod"]  # staging has no overlay
    assert pins["prod"].version == "3"
    assert pins["prod"].problem is None
    assert pins["dev"].version is None  # no pin file: the service serves its own model
    assert pins["dev"].path == f"{OVERLAYS}/dev/{PIN_FILE}"


def test_a_pin_edit_reaches_the_built_deployment(
    repo: tuple[GitOpsRepo, str], tmp_path: Path
) -> None:
    gitops, main = repo
    edits = pin_edits(gitops, main, SERVICE, "dev", MODEL, "7")
    assert [edit.path for edit in edits] == [
        f"{OVERLAYS}/dev/{PIN_FILE}",
        f"{OVERLAYS}/dev/kustomization.yaml",
    ]
    edited = apply_edits(gitops, main, SERVICE, edits)
    root = tmp_path / "tree"
    gitops.export_tree(main, root, [f"services/{SERVICE}"])
    for path, content in edited.files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(content)
    assert read_pin("dev", "x", (root / OVERLAYS / "dev" / PIN_FILE).read_text()).version == "7"
    objects = kustomize_build(root / OVERLAYS / "dev")
    [deployment] = [item for item in objects if item["kind"] == "Deployment"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "MODEL_VERSION", "value": "7"} in env
    assert {"name": "SERVICE_NAME", "value": SERVICE} in env  # merged, not replaced


def test_a_listed_pin_file_is_rewritten_without_touching_the_kustomization(
    repo: tuple[GitOpsRepo, str],
) -> None:
    gitops, main = repo
    [edit] = pin_edits(gitops, main, SERVICE, "prod", MODEL, "4")
    assert edit.content is not None
    assert read_pin("prod", edit.path, edit.content).version == "4"
    # The text the template renders, so the diff is the value's line alone.
    assert edit.content == pin_text(SERVICE, "prod", MODEL, "3").replace('"3"', '"4"')
    with pytest.raises(ValueError, match="not a registered model name"):
        pin_text(SERVICE, "prod", "model\nkind: Secret", "4")


def test_an_overlay_that_is_missing_is_refused(repo: tuple[GitOpsRepo, str]) -> None:
    gitops, main = repo
    with pytest.raises(OverlayRefusedError, match="overlays/staging has no kustomization"):
        pin_edits(gitops, main, SERVICE, "staging", MODEL, "4")
    with pytest.raises(ValueError, match="not a number"):
        pin_edits(gitops, main, SERVICE, "dev", MODEL, "4; rm -rf /")


def pin_file(env: list[dict[str, str]]) -> str:
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": SERVICE},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": env}]}}},
    }
    return yaml.safe_dump(document)


@pytest.mark.parametrize(
    ("env", "version", "model"),
    [
        ([{"name": "MODEL_VERSION", "value": "12"}], "12", None),
        ([{"name": "MODEL_VERSION", "value": ""}], None, None),
        ([], None, None),
        (
            [
                {"name": "MODEL_VERSION", "value": "1"},
                {"name": "MODEL_URI", "value": f"models:/{MODEL}/5"},
            ],
            "5",
            MODEL,
        ),
    ],
)
def test_read_pin_takes_the_uri_over_the_version(
    env: list[dict[str, str]], version: str | None, model: str | None
) -> None:
    pin = read_pin("prod", "model.yaml", pin_file(env))
    assert (pin.version, pin.model, pin.problem) == (version, model, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (pin_file([{"name": "MODEL_VERSION", "value": "latest"}]), "'latest' is not a number"),
        (pin_file([{"name": "MODEL_URI", "value": "runs:/abc/model"}]), "not models:/"),
        ("kind: Deployment\nspec: [unclosed\n", "model.yaml line"),
    ],
)
def test_a_pin_that_cannot_be_read_names_the_file(text: str, problem: str) -> None:
    pin = read_pin("prod", "model.yaml", text)
    assert pin.version is None
    assert pin.problem is not None
    assert pin.problem.startswith("model.yaml")
    assert problem in pin.problem
