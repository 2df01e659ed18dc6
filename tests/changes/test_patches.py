"""Patches of one object: the strategic-merge subset, JSON 6902, and the file kept as written."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import yaml

from portal.changes.patches import PatchError, apply_json6902, apply_strategic_merge
from portal.changes.yaml_objects import Target, TargetError, patch_object

DEPLOYMENT = """\
# The API of the service.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api   # the Service selects it
spec:
  template:
    spec:
      containers:
        - name: app
          image: example/api:1.0
          env:
            - name: LOG_LEVEL
              value: info
            - name: MODE
              value: fast
          args: ["--a", "--b"]
        - name: sidecar
          image: example/proxy:2
---
apiVersion: v1
kind: Service
metadata:
  name: api
spec:
  ports:
  - name: http
    port: 80
"""


def smp(patch: dict[str, Any], text: str = DEPLOYMENT, kind: str = "Deployment") -> str:
    return patch_object(text, Target(kind, "api"), partial(apply_strategic_merge, patch=patch))


def containers(text: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = next(yaml.safe_load_all(text))["spec"]["template"]["spec"][
        "containers"
    ]
    return found


def test_strategic_merge_merges_named_items_and_keeps_everything_else_as_written() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [
                                {"name": "MODE", "value": "safe"},
                                {"name": "NEW", "value": "1"},
                            ],
                        },
                        {"name": "metrics", "image": "example/exporter:1"},
                    ]
                }
            }
        }
    }
    text = smp(patch)
    app, sidecar, metrics = containers(text)
    assert app["image"] == "example/api:1.0" and app["args"] == ["--a", "--b"]
    assert app["env"] == [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "MODE", "value": "safe"},
        {"name": "NEW", "value": "1"},
    ]
    assert sidecar == {"name": "sidecar", "image": "example/proxy:2"}
    assert metrics == {"name": "metrics", "image": "example/exporter:1"}
    # Comments, the other document and its own list layout are untouched.
    assert text.startswith("# The API of the service.\n")
    assert "name: api   # the Service selects it\n" in text
    assert text.endswith(DEPLOYMENT[DEPLOYMENT.index("---\n") :])
    changed = [line for line in text.splitlines() if line not in DEPLOYMENT.splitlines()]
    assert changed == [
        "              value: safe",
        "            - name: NEW",
        "              value: '1'",
        "        - name: metrics",
        "          image: example/exporter:1",
    ]


def test_strategic_merge_directives_and_lists_without_names() -> None:
    patch = {
        "metadata": {"labels": {"tier": "web"}},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "args": ["--c"],
                            "env": [{"name": "LOG_LEVEL", "$patch": "delete"}],
                        },
                        {"name": "sidecar", "$patch": "delete"},
                    ]
                }
            }
        },
    }
    (app,) = containers(smp(patch))
    assert app["args"] == ["--c"]  # a list of plain values is replaced
    assert app["env"] == [{"name": "MODE", "value": "fast"}]
    replaced = smp(
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}
                }
            }
        }
    )
    assert containers(replaced) == [{"name": "only", "image": "x"}]
    whole = smp({"spec": {"template": {"$patch": "replace", "spec": {"containers": []}}}})
    assert next(yaml.safe_load_all(whole))["spec"]["template"] == {"spec": {"containers": []}}
    gone = smp({"spec": {"template": None}})
    assert "template" not in next(yaml.safe_load_all(gone))["spec"]
    dropped = smp({"spec": {"template": {"$patch": "delete"}}})
    assert "template" not in next(yaml.safe_load_all(dropped))["spec"]


@pytest.mark.parametrize(
    ("patch", "says"),
    [
        ({"$patch": "delete"}, "not supported"),
        (
            {"spec": {"$retainKeys": ["a"]}},
            "spec.$retainKeys: the directive $retainKeys is not supported",
        ),
        ({"spec": {"$patch": "explode"}}, "is not delete, replace or merge"),
        ({"metadata": {"name": "other"}}, "may not change the object's kind, name or namespace"),
        ({}, "non-empty mapping"),
    ],
)
def test_strategic_merge_refusals(patch: dict[str, Any], says: str) -> None:
    with pytest.raises(PatchError, match=r".*") as caught:
        smp(patch)
    assert says in str(caught.value)


def test_json6902_operations_and_their_failures() -> None:
    ops = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": "example/api:2.0",
        },
        {"op": "add", "path": "/spec/template/spec/containers/1/args", "value": ["--x"]},
        {"op": "remove", "path": "/spec/template/spec/containers/0/env/0"},
        {"op": "test", "path": "/kind", "value": "Deployment"},
    ]
    text = patch_object(
        DEPLOYMENT, Target("Deployment", "api"), partial(apply_json6902, operations=ops)
    )
    app, sidecar = containers(text)
    assert app["image"] == "example/api:2.0" and sidecar["args"] == ["--x"]
    assert app["env"] == [{"name": "MODE", "value": "fast"}]
    assert "# the Service selects it" in text
    for bad, says in [
        ([{"op": "test", "path": "/kind", "value": "Service"}], "test operation failed"),
        ([{"op": "remove", "path": "/spec/nothing"}], "nothing"),
        ([{"op": "replace", "path": "/spec/template/spec/containers/9/image", "value": 1}], ""),
        ([{"op": "jump", "path": "/a"}], "jump"),
        ([], "non-empty list"),
        ([{"path": "/a"}], "needs an op and a path"),
        (
            [{"op": "replace", "path": "/metadata/name", "value": "other"}],
            "kind, name or namespace",
        ),
    ]:
        with pytest.raises(PatchError) as caught:
            patch_object(
                DEPLOYMENT, Target("Deployment", "api"), partial(apply_json6902, operations=bad)
            )
        assert says in str(caught.value)


def test_the_target_must_be_exactly_one_object_of_the_file() -> None:
    twice = DEPLOYMENT + "---\n" + DEPLOYMENT.split("---\n")[0]
    with pytest.raises(TargetError, match=r"2 objects match Deployment/api \(lines 2, 31\)"):
        smp({"spec": {"x": 1}}, twice)
    with pytest.raises(
        TargetError, match=r"no ConfigMap/api in the file \(it holds: Deployment/api, Service/api\)"
    ):
        smp({"spec": {"x": 1}}, kind="ConfigMap")
    with pytest.raises(TargetError, match="not valid YAML"):
        smp({"spec": {"x": 1}}, "kind: [Deployment\n")
    service = smp({"spec": {"type": "ClusterIP"}}, kind="Service")
    # The Service document keeps its own layout (lists not indented under their key).
    assert service.endswith("  ports:\n  - name: http\n    port: 80\n  type: ClusterIP\n")
    assert service.startswith(DEPLOYMENT[: DEPLOYMENT.index("---\n")])


def test_a_kustomization_without_metadata_is_found_by_its_kind() -> None:
    text = (
        "kind: Kustomization\nresources:\n  - ../../base\n"
        'images:\n  - name: example/api\n    newTag: "1.0"\n'
    )
    patched = patch_object(
        text,
        Target("Kustomization"),
        partial(
            apply_strategic_merge, patch={"images": [{"name": "example/api", "newTag": "1.1"}]}
        ),
    )
    assert patched == text.replace('"1.0"', '"1.1"')
