"""Edits of a service's files on one main commit: which paths, which files, what is written."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from portal.changes.edits import Edit, EditError, apply_edits, path_problem
from portal.changes.yaml_objects import Target

BASE = "b" * 40
KUSTOMIZATION = "kind: Kustomization\nimages:\n  - name: example/api\n    newTag: '1.0'\n"


@dataclass
class FakeTree:
    """Files and modes of one commit, as the GitOps clone reports them."""

    modes: dict[str, str] = field(
        default_factory=lambda: {
            "services": "040000",
            "services/api": "040000",
            "services/api/deploy": "040000",
            "services/api/deploy/kustomization.yaml": "100644",
            "services/api/run.sh": "100755",
            "services/api/shared": "120000",
            "services/api/vendor": "160000",
            "services/api/README": "100644",
            "clusters": "040000",
            "clusters/dev": "040000",
            "clusters/dev/services": "040000",
        }
    )
    files: dict[str, bytes] = field(
        default_factory=lambda: {
            "services/api/deploy/kustomization.yaml": KUSTOMIZATION.encode(),
            "services/api/run.sh": b"#!/bin/sh\necho hi\n",
            "services/api/README": b"\xff\xfe not utf-8",
        }
    )
    reads: list[str] = field(default_factory=list)

    def read_file(self, ref: str, path: str) -> bytes:
        assert ref == BASE
        self.reads.append(path)
        return self.files[path]

    def entry_modes(self, ref: str, paths: Sequence[str]) -> dict[str, str]:
        assert ref == BASE
        return {path: self.modes[path] for path in paths if path in self.modes}


def refused(*edits: Edit, tree: FakeTree | None = None, service: str = "api") -> dict[str, str]:
    with pytest.raises(EditError) as caught:
        apply_edits(tree or FakeTree(), BASE, service, edits)
    return caught.value.errors


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("services/api/app.py", None),
        ("clusters/prod/services/api.yaml", None),
        ("services/apiary/x", "outside services/api/"),
        ("services/api", "outside services/api/"),
        ("clusters/dev/services/api.yml", "outside services/api/"),
        ("clusters/dev/services/nested/api.yaml", "outside services/api/"),
        ("clusters/Dev/services/api.yaml", "outside services/api/"),
        ("services/api/../web/x", "'..' path segments are refused"),
        ("services/api/./x", "'..' path segments are refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("services/api/.GIT./hooks/x", "through .git"),
        ("services\\api\\x", "backslashes"),
        ("", "empty file path"),
    ],
)
def test_only_the_services_own_files_may_be_edited(path: str, problem: str | None) -> None:
    found = path_problem("api", path)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_what_main_has_in_the_way_is_refused_per_edit() -> None:
    tree = FakeTree()
    errors = refused(
        Edit("services/api/shared/x.yaml", "a: 1\n"),
        Edit("services/api/vendor/x", "x"),
        Edit("services/api/deploy", "x"),
        Edit("services/api/run.sh/x", "x"),
        Edit("clusters/qa/services/api.yaml", "a: 1\n"),
        Edit("services/web/x", "x"),
        tree=tree,
    )
    assert errors == {
        "edits[0].path": "services/api/shared/x.yaml: services/api/shared is a symbolic link on "
        "main; links are not followed",
        "edits[1].path": "services/api/vendor/x: services/api/vendor is a submodule on main",
        "edits[2].path": "services/api/deploy is a folder on main, not a file",
        "edits[3].path": "services/api/run.sh/x: services/api/run.sh is a file on main, "
        "not a folder",
        "edits[4].path": "clusters/qa/services/api.yaml: main has no cluster folder clusters/qa",
        "edits[5].path": errors["edits[5].path"],
    }
    assert "outside services/api/" in errors["edits[5].path"]
    assert tree.reads == []  # nothing is read when a path is refused
    assert refused(Edit("services/web/x", "x"), service="web")["service"].startswith(
        "services/web is not a folder on main"
    )
    clash = refused(Edit("services/api/new", "x"), Edit("services/api/new/y", "y"))
    assert clash == {"edits[1].path": "services/api/new/y: services/api/new is edited as a file"}


def test_edits_apply_in_order_and_only_changed_files_are_written() -> None:
    bump = Edit(
        "services/api/deploy/kustomization.yaml",
        patch_type="strategic-merge",
        target=Target("Kustomization"),
        patch={"images": [{"name": "example/api", "newTag": "1.1"}]},
    )
    again = Edit(
        "services/api/deploy/kustomization.yaml",
        patch_type="json6902",
        target=Target("Kustomization"),
        patch=[{"op": "add", "path": "/images/0/newName", "value": "example/api2"}],
    )
    edited = apply_edits(
        FakeTree(),
        BASE,
        "api",
        [
            bump,
            again,
            Edit("services/api/run.sh", "#!/bin/sh\necho bye\n"),
            Edit("clusters/dev/services/api.yaml", "kind: Kustomization\n"),
        ],
    )
    assert edited.files == {
        "services/api/deploy/kustomization.yaml": KUSTOMIZATION.replace(
            "'1.0'", "'1.1'\n    newName: example/api2"
        ).encode(),
        "services/api/run.sh": b"#!/bin/sh\necho bye\n",
        "clusters/dev/services/api.yaml": b"kind: Kustomization\n",
    }
    assert edited.executable == ["services/api/run.sh"]  # its mode stays


def test_contents_and_patches_that_cannot_be_written() -> None:
    patch = {"patch_type": "strategic-merge", "target": Target("Kustomization"), "patch": {"a": 1}}
    errors = refused(
        Edit("services/api/x.yaml", "a: [1\n"),
        Edit("services/api/y.txt", "nul\0"),
        Edit("services/api/run.sh", **patch),  # type: ignore[arg-type]
        Edit("services/api/new.yaml", **patch),  # type: ignore[arg-type]
        Edit("services/api/z.txt", "\ud800"),
    )
    assert "not valid YAML at line 2" in errors["edits[0].content"]
    assert "NUL" in errors["edits[1].content"]
    assert "a patch edits a YAML file" in errors["edits[2].path"]
    assert "does not exist on main; send its whole content" in errors["edits[3].path"]
    assert "lone surrogate" in errors["edits[4].content"]
    same = Edit("services/api/deploy/kustomization.yaml", KUSTOMIZATION)
    assert refused(same) == {"edits": "the edits change nothing: every file stays as it is on main"}
