"""Reserved service names: the static rules, and what the GitOps repository's main holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.gitops_tree import read_files, ref_names
from portal.scaffold import names
from portal.scaffold.answers import check_service_name
from portal.scaffold.names import repository_reason, reserved_reason, taken_names
from tests.integrations.gitops_support import ANN, make_settings

# Every name of issue 10 (finding 2), and a few of the same families, with why it is refused.
RESERVED = [
    ("kube-system", "kube-system is a Kubernetes system namespace"),
    ("kube-public", "kube-public is a Kubernetes system namespace"),
    ("kube-node-lease", "kube-node-lease is a Kubernetes system namespace"),
    ("kube-anything", "kube-anything is a Kubernetes system namespace"),
    ("default", "default is a Kubernetes system namespace"),
    (
        "flux-system",
        "flux-system is Flux's namespace and the name of each cluster's root Kustomization",
    ),
    ("monitoring", "monitoring is the namespace of the platform's monitoring stack"),
    ("infrastructure", "infrastructure is the name of each cluster's infrastructure Kustomization"),
    ("main", "main is a git ref name"),
    ("head", "head is a git ref name"),
    ("HEAD", "HEAD is a git ref name"),
    ("master", "master is a git ref name"),
    ("origin", "origin is a git ref name"),
    ("on", "on reads as a boolean or null in YAML"),
    ("null", "null reads as a boolean or null in YAML"),
    ("n", "n reads as a boolean or null in YAML"),
]


@pytest.mark.parametrize(("name", "reason"), RESERVED)
def test_reserved_names_are_refused_with_their_reason(name: str, reason: str) -> None:
    problem = check_service_name(name)
    assert problem is not None and problem.startswith(reason), problem


@pytest.mark.parametrize("name", ["payments", "kube", "kubernetes-dashboard", "mainframe", "no-op"])
def test_names_that_only_look_alike_are_free(name: str) -> None:
    assert check_service_name(name) is None
    assert reserved_reason(name) is None


def test_a_look_alike_that_lower_cases_to_a_reserved_name_is_refused() -> None:
    # The Kelvin sign lower-cases to "k": never let it through as "not lower case" only.
    assert check_service_name("\u212aube-system") == (
        "\u212aube-system is a Kubernetes system namespace"
    )


def test_a_trailing_line_break_is_not_a_dns_label() -> None:
    assert check_service_name("payments\n") is not None


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return bootstrap_gitops(make_settings(tmp_path / "var"))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "grafana",
            "grafana is already the name of HelmRepository monitoring/grafana in "
            "infrastructure/base/monitoring/helm-repositories.yaml",
        ),
        (
            "tempo",
            "tempo is already the name of HelmRelease monitoring/tempo in "
            "infrastructure/base/monitoring/tempo.yaml",
        ),
    ],
)
def test_objects_of_the_cluster_folders_take_their_names(
    repo: GitOpsRepo, name: str, reason: str
) -> None:
    assert repository_reason(repo, name) == reason


def test_a_free_name_passes_the_repository_rules(repo: GitOpsRepo) -> None:
    assert repository_reason(repo, "payments") is None


def test_the_configured_main_branch_is_refused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "var").model_copy(update={"gitops_branch": "trunk"})
    repo = bootstrap_gitops(settings)

    assert repository_reason(repo, "trunk") == (
        "trunk is the name of the GitOps repository's main branch"
    )


def test_the_last_part_of_a_branch_name_is_refused(repo: GitOpsRepo) -> None:
    repo.create_branch("release/payments-v2", {"notes/a.txt": b"a\n"}, "release", ANN)

    assert "release/payments-v2" in ref_names(repo)
    assert repository_reason(repo, "payments-v2") == (
        "payments-v2 is the name of the git ref release/payments-v2 in the GitOps repository"
    )


def test_names_follow_main_commit_by_commit(repo: GitOpsRepo) -> None:
    first = repo.resolve(repo.main)
    assert "extra-ns" not in taken_names(repo, first)
    namespace = b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: extra-ns\n"
    repo.create_branch("add-ns", {"clusters/dev/extra.yaml": namespace}, "add", ANN)
    repo.merge("add-ns", "merge", ANN)
    repo.refresh()

    assert repository_reason(repo, "extra-ns") == (
        "extra-ns is already the name of Namespace extra-ns in clusters/dev/extra.yaml"
    )
    assert (str(repo.git_dir), first) in names._taken  # the older commit stays cached


def test_targets_and_namespaces_count_and_broken_files_do_not_stop_the_rest(
    repo: GitOpsRepo,
) -> None:
    files = {
        "clusters/dev/apps.yaml": (
            b"apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            b"metadata: {name: apps, namespace: flux-system}\n"
            b"spec: {targetNamespace: shop, path: ./apps}\n"
        ),
        "clusters/dev/broken.yaml": b"kind: [\n",
        "clusters/dev/kustomization.yaml": b"resources: [apps.yaml]\n",
    }
    taken = names.names_in(files)

    assert taken["apps"].startswith("is already the name of Kustomization flux-system/apps")
    assert taken["shop"] == (
        "is already the target namespace of Kustomization flux-system/apps in "
        "clusters/dev/apps.yaml"
    )
    assert taken["flux-system"].startswith("is already the namespace of")
    assert "resources" not in taken  # a kustomize build file declares no object


def test_read_files_reads_the_folders_and_leaves_large_files_unread(
    repo: GitOpsRepo,
) -> None:
    files = {
        "clusters/dev/big.yaml": b"x" * 200_000,
        "clusters/dev/dashboards/board.json": b"{}\n",
        "infrastructure/dev/empty.yaml": b"",
    }
    repo.create_branch("read-me", files, "files", ANN)

    yaml_only = read_files(repo, "read-me", ["clusters", "infrastructure"], max_bytes=100_000)
    everything = read_files(repo, "read-me", ["clusters/dev"], suffixes=None)

    assert yaml_only.too_large == ["clusters/dev/big.yaml"]
    assert yaml_only.files["infrastructure/dev/empty.yaml"] == b""
    assert "clusters/dev/dashboards/board.json" not in yaml_only.files
    assert yaml_only.files["clusters/dev/infrastructure.yaml"].startswith(b"# Shared platform")
    assert everything.files["clusters/dev/dashboards/board.json"] == b"{}\n"
    assert everything.files["clusters/dev/big.yaml"] == b"x" * 200_000
    assert not any(path.startswith("infrastructure/") for path in everything.files)
