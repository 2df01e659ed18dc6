"""Flux image automation: the policies a scaffold adds for its overlays' $imagepolicy markers."""

from __future__ import annotations

import re

import pytest
import yaml

from portal.integrations.kubernetes_schemas import validate_objects
from portal.scaffold.images import (
    BUILD_TAGS,
    Marker,
    image_documents,
    image_objects,
    overlay_markers,
    with_image_automation,
)
from tests.conftest import REPO

OVERLAY = """\
images:
  - name: registry.example.com/services/shop
    newTag: "0.3.1" # {"$imagepolicy": "flux-system:shop-prod:tag"}
  - name: sidecar
    newName: ghcr.io/acme/sidecar # {"$imagepolicy": "flux-system:shop-sidecar-prod:name"}
    newTag: v2.0.0
  - name: busybox
    newTag: "1.36"
"""


def test_markers_name_the_image_of_their_entry_and_the_policy() -> None:
    assert overlay_markers(OVERLAY) == [
        Marker("registry.example.com/services/shop", "0.3.1", "flux-system", "shop-prod"),
        Marker("ghcr.io/acme/sidecar", "", "flux-system", "shop-sidecar-prod"),
    ]
    assert overlay_markers("images:\n  - name: a\n    newTag: '1'\n") == []


def policy_of(env: str, tag: str) -> dict[str, object]:
    objects = image_objects(
        "shop", env, [Marker("registry.example.com/shop", tag, "flux-system", f"shop-{env}")]
    )
    repository, policy = objects
    assert repository["kind"] == "ImageRepository"
    assert repository["spec"] == {"image": "registry.example.com/shop", "interval": "5m"}
    spec: dict[str, object] = policy["spec"]
    assert spec["imageRepositoryRef"] == {"name": "shop"}
    return spec


@pytest.mark.parametrize(
    ("env", "tag", "expected"),
    [
        ("prod", "0.3.1", {"policy": {"semver": {"range": ">=0.3.1 <1.0.0"}}}),
        ("production", "v2.1.0", {"policy": {"semver": {"range": ">=2.1.0 <3.0.0"}}}),
        ("prod-eu", "latest-ish", {"policy": {"semver": {"range": ">=0.0.0 <1.0.0"}}}),
        ("staging", "0.3.1", {"policy": {"semver": {"range": ">=0.3.1-0"}}}),
        ("qa", "1.0.0", {"policy": {"semver": {"range": ">=1.0.0-0"}}}),
        (
            "dev",
            "0.3.1",
            {
                "filterTags": {"pattern": BUILD_TAGS, "extract": "$ts"},
                "policy": {"numerical": {"order": "asc"}},
            },
        ),
    ],
)
def test_each_environment_class_gets_its_policy(
    env: str, tag: str, expected: dict[str, object]
) -> None:
    spec = policy_of(env, tag)
    assert {key: value for key, value in spec.items() if key != "imageRepositoryRef"} == expected


def test_the_build_pattern_takes_main_builds_only() -> None:
    pattern = re.compile(BUILD_TAGS)
    match = pattern.match("main-3f2a9c1-1765000000")
    assert match is not None and match["ts"] == "1765000000"
    assert pattern.match("feature-3f2a9c1-1765000000") is None
    assert pattern.match("0.3.1") is None


def test_the_objects_pass_flux_schemas_and_one_repository_serves_each_image() -> None:
    documents = image_documents("shop", "prod", OVERLAY)
    objects = list(yaml.safe_load_all(documents))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ImageRepository", "shop"),
        ("ImagePolicy", "shop-prod"),
        ("ImageRepository", "shop-2"),
        ("ImagePolicy", "shop-sidecar-prod"),
    ]
    assert objects[3]["spec"]["imageRepositoryRef"] == {"name": "shop-2"}
    assert validate_objects(objects) == []


def test_the_seed_clusters_run_an_image_update_automation_that_passes_its_schema() -> None:
    for env in ("dev", "staging", "prod"):
        (automation,) = yaml.safe_load_all(
            (REPO / "gitops-repo" / "clusters" / env / "image-automation.yaml").read_text()
        )
        assert automation["kind"] == "ImageUpdateAutomation"
        assert automation["spec"]["update"] == {"path": "./services", "strategy": "Setters"}
        assert automation["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
        assert validate_objects([automation]) == []


def test_wiring_files_get_the_images_of_their_own_environment_only() -> None:
    wiring = {
        "clusters/dev/services/shop.yaml": b"kind: Kustomization\n",
        "clusters/prod/services/shop.yaml": b"kind: Kustomization\n",
    }
    rendered = {
        "services/shop/deploy/overlays/prod/kustomization.yaml": OVERLAY.encode(),
        "services/shop/deploy/overlays/dev/kustomization.yaml": b"resources: [../../base]\n",
    }

    files = with_image_automation("shop", wiring, rendered)

    assert files["clusters/dev/services/shop.yaml"] == b"kind: Kustomization\n"
    prod = list(yaml.safe_load_all(files["clusters/prod/services/shop.yaml"]))
    assert [doc["kind"] for doc in prod] == [
        "Kustomization",
        "ImageRepository",
        "ImagePolicy",
        "ImageRepository",
        "ImagePolicy",
    ]
