"""A service's Flux sync state per environment: the rows, the cache and the deadline.

The pages that show it: test_sync_state_pages.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from portal.catalog.deployed import applied, change_deployments
from portal.catalog.sync_state import (
    NOT_CONFIGURED,
    SyncRow,
    SyncStateRuntime,
    age,
    overlay_of,
    revision_sha,
    to_row,
)
from portal.changes.models import Change, ChangeStatus
from portal.integrations.flux_status import (
    FakeFluxStatusSource,
    FluxStatusError,
    FluxStatusSource,
    KustomizationStatus,
)
from portal.integrations.git import GitError
from portal.integrations.gitops_run import GitOpsError

SHA_A = "a" * 40
SHA_B = "b" * 40
NOW = datetime.now(UTC)


def status(
    ready: str | None = "True",
    applied: str = SHA_A,
    attempted: str | None = None,
    env: str = "dev",
    message: str = "",
    **extra: object,
) -> KustomizationStatus:
    return KustomizationStatus(
        "flux-system",
        "svc",
        ready,  # type: ignore[arg-type]
        message=message,
        last_applied_revision=f"main@sha1:{applied}" if applied else "",
        last_attempted_revision=f"main@sha1:{attempted or applied}",
        # From the time of the call: the rows' ages are read against the real clock.
        observed_at=datetime.now(UTC) - timedelta(minutes=5),
        path=f"./services/svc/deploy/overlays/{env}",
        **extra,  # type: ignore[arg-type]
    )


@dataclass
class FakeClusters:
    """Environment -> source; ``shared`` as FluxClusters says it."""

    sources: Mapping[str, FluxStatusSource]
    shared: bool = False
    closed: bool = False

    def for_environment(self, environment: str) -> FluxStatusSource | None:
        return self.sources.get(environment)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeLister:
    """GitOps main's files (or a git error), and which commits contain which."""

    files: list[str] = field(default_factory=list)
    error: GitError | None = None
    # (commit, later commit containing it); any other pair is not contained.
    contained: set[tuple[str, str]] = field(default_factory=set)

    def list_files(self, ref: str, prefix: str = "") -> list[str]:
        assert ref == "main"
        if self.error is not None:
            raise self.error
        return [path for path in self.files if path.startswith(prefix)]

    def is_ancestor(self, commit: str, of: str) -> bool:
        return commit == of or (commit, of) in self.contained


def cluster_files(service: str, *environments: str) -> list[str]:
    return [f"clusters/{env}/services/{service}.yaml" for env in environments]


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def runtime(
    sources: Mapping[str, FluxStatusSource],
    files: list[str],
    *,
    shared: bool = False,
    timeout: float = 1.0,
    clock: Clock | None = None,
    contained: set[tuple[str, str]] | None = None,
) -> SyncStateRuntime:
    return SyncStateRuntime(
        FakeClusters(sources, shared),
        lambda: FakeLister(files, contained=contained or set()),
        timeout=timeout,
        clock=clock or Clock(),
    )


def by_env(rows: tuple[SyncRow, ...] | list[SyncRow]) -> dict[str, SyncRow]:
    return {row.environment: row for row in rows}


def test_each_environment_of_the_service_gets_a_row_in_promotion_order() -> None:
    dev = FakeFluxStatusSource({("flux-system", "svc"): status()})
    prod = FakeFluxStatusSource(
        {("flux-system", "svc"): status("False", attempted=SHA_B, env="prod", message="boom")}
    )
    staging = FakeFluxStatusSource()  # the cluster has no such Kustomization
    files = [*cluster_files("svc", "prod", "dev", "staging", "qa"), *cluster_files("other", "x")]
    sources = {"dev": dev, "prod": prod, "staging": staging}

    state = runtime(sources, files).state("svc")

    assert [row.environment for row in state.rows] == ["dev", "qa", "staging", "prod"]
    rows = by_env(state.rows)
    assert (rows["dev"].kind, rows["dev"].label, rows["dev"].revision) == (
        "ready",
        "Ready",
        SHA_A[:12],
    )
    assert rows["dev"].age == "5m" and rows["dev"].attempted_other == ""
    assert (rows["prod"].kind, rows["prod"].message) == ("not-ready", "boom")
    assert rows["prod"].attempted_other == SHA_B[:12]
    assert rows["staging"].kind == "not-found" and rows["staging"].revision == ""
    assert rows["qa"].kind == "no-cluster" and "PORTAL_KUBE_CONTEXTS" in rows["qa"].message
    assert dev.reads == prod.reads == staging.reads == [("flux-system", "svc")]


def test_a_shared_cluster_only_answers_for_the_overlay_it_applies() -> None:
    one = FakeFluxStatusSource({("flux-system", "svc"): status(env="dev")})
    sources = {"dev": one, "prod": one}

    rows = by_env(
        runtime(sources, cluster_files("svc", "dev", "prod"), shared=True).state("svc").rows
    )
    unshared = by_env(runtime(sources, cluster_files("svc", "dev", "prod")).state("svc").rows)

    assert rows["dev"].kind == "ready"
    assert rows["prod"].kind == "not-found"
    assert rows["prod"].message == "The cluster runs the dev overlay, not this environment's."
    assert unshared["prod"].kind == "ready"  # contexts named explicitly are trusted


def test_unknown_suspended_and_conditionless_objects_say_so() -> None:
    source = FakeFluxStatusSource(
        {
            ("flux-system", "a"): status("Unknown", message="Reconciliation in progress"),
            ("flux-system", "b"): status(None, applied=""),
            ("flux-system", "c"): status("True", suspended=True, message="Applied"),
        }
    )
    rt = runtime({"dev": source}, [])

    a, b, c = (rt.rows(name, ["dev"])[0] for name in ("a", "b", "c"))

    assert (a.kind, a.label, a.message) == ("unknown", "Unknown", "Reconciliation in progress")
    assert (b.kind, b.message, b.revision) == ("unknown", "No Ready condition yet.", "")
    assert (c.kind, c.message) == ("ready", "Suspended. Applied")


def test_an_unreadable_cluster_is_a_row_not_an_exception() -> None:
    refused = FakeFluxStatusSource({("flux-system", "svc"): FluxStatusError("context b forbids")})
    broken = FakeFluxStatusSource({("flux-system", "svc"): RuntimeError("client bug")})

    rows = by_env(
        runtime({"dev": refused, "prod": broken}, cluster_files("svc", "dev", "prod"))
        .state("svc")
        .rows
    )

    assert (rows["dev"].kind, rows["dev"].label, rows["dev"].message) == (
        "error",
        "Unreadable",
        "context b forbids",
    )
    assert rows["prod"].message == "Reading the cluster failed: RuntimeError"


def test_answers_and_errors_are_kept_for_a_while_then_read_again() -> None:
    clock = Clock()
    good = FakeFluxStatusSource({("flux-system", "svc"): status()})
    bad = FakeFluxStatusSource({("flux-system", "svc"): FluxStatusError("down")})
    rt = runtime({"dev": good, "prod": bad}, cluster_files("svc", "dev", "prod"), clock=clock)

    rt.state("svc")
    clock.now += rt.cache_seconds - 1
    again = rt.state("svc")
    assert len(good.reads) == len(bad.reads) == 1
    assert by_env(again.rows)["prod"].message == "down"

    clock.now += 2
    rt.state("svc")
    assert len(good.reads) == len(bad.reads) == 2


def test_the_services_environments_are_listed_once_per_cache_time() -> None:
    clock = Clock()
    listed: list[int] = []
    files = [*cluster_files("svc", "dev", "prod"), *cluster_files("web", "dev")]

    def lister() -> FakeLister:
        listed.append(1)
        return FakeLister(files)

    rt = SyncStateRuntime(None, lister, timeout=1.0, clock=clock)
    assert rt.environments("svc") == ["dev", "prod"]
    assert rt.environments("web") == ["dev"]
    assert rt.environments("gone") == []
    assert len(listed) == 1  # every page of the cache time reads one listing
    files.append("clusters/staging/services/web.yaml")  # a merge lands
    clock.now += rt.cache_seconds + 1
    assert rt.environments("web") == ["dev", "staging"]
    assert len(listed) == 2


@dataclass
class SlowSource:
    """Answers only when released, as a hung cluster would (bounded by the test)."""

    release: threading.Event = field(default_factory=threading.Event)
    reads: int = 0

    def kustomization(self, namespace: str, name: str) -> KustomizationStatus | None:
        self.reads += 1
        self.release.wait(5)
        return status()


def test_the_page_waits_no_longer_than_the_timeout_and_keeps_the_late_answer() -> None:
    slow = SlowSource()
    fast = FakeFluxStatusSource({("flux-system", "svc"): status(env="prod")})
    rt = runtime({"dev": slow, "prod": fast}, cluster_files("svc", "dev", "prod"), timeout=1.0)

    started = time.monotonic()
    rows = by_env(rt.state("svc").rows)
    waited = time.monotonic() - started

    assert waited < 1.0 + 2.0  # the slow source would answer after 5 s
    assert rows["dev"].kind == "error"
    assert rows["dev"].message == "The cluster did not answer within 1 s."
    assert rows["prod"].kind == "ready"  # read at the same time, not after dev
    # A second page while the read still hangs shares it instead of starting another.
    assert by_env(rt.state("svc").rows)["dev"].kind == "error"
    slow.release.set()
    deadline = time.monotonic() + 5
    while by_env(rt.state("svc").rows)["dev"].kind != "ready":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert slow.reads == 1
    rt.close()


def test_without_kubernetes_or_git_the_state_says_why() -> None:
    off = SyncStateRuntime(None, lambda: FakeLister(), timeout=1)
    broken = SyncStateRuntime(
        FakeClusters({}), lambda: FakeLister(error=GitError("remote hung")), timeout=1
    )

    assert off.state("svc").problem == NOT_CONFIGURED and not off.state("svc").configured
    assert broken.state("svc").problem == "The GitOps repository cannot be read: remote hung"


@pytest.mark.parametrize(
    ("revision", "sha"),
    [
        (f"main@sha1:{SHA_A}", SHA_A),
        (f"main@sha256:{'c' * 64}", "c" * 64),
        (f"main/{SHA_B}", SHA_B),  # Flux before 2.0
        ("v1.2.3@sha256:abc", ""),
        ("", ""),
    ],
)
def test_a_revision_names_its_commit(revision: str, sha: str) -> None:
    assert revision_sha(revision) == sha


def test_overlays_and_ages_are_read_from_what_flux_and_the_clock_say() -> None:
    assert overlay_of("./services/svc/deploy/overlays/prod/") == "prod"
    assert overlay_of("./apps/production") is None
    assert [age(NOW - timedelta(seconds=s), NOW) for s in (5, 300, 7200, 3 * 86400)] == [
        "5s",
        "5m",
        "2h",
        "3d",
    ]
    assert age(None) == ""


def merged(
    merge_sha: str | None = SHA_A, change_status: ChangeStatus = ChangeStatus.MERGED
) -> Change:
    return Change(
        title="Add svc",
        template="air-quality-monitor",
        service="svc",
        owner_ref="group:default/platform-team",
        requester_ref="user:default/ada.lovelace",
        answers={},
        branch="add-svc",
        status=change_status,
        merge_sha=merge_sha,
    )


def test_a_merged_change_is_deployed_where_flux_applied_its_merge_commit_or_a_later_one() -> None:
    dev = FakeFluxStatusSource({("flux-system", "svc"): status(applied=SHA_A)})
    prod = FakeFluxStatusSource({("flux-system", "svc"): status(applied=SHA_B, env="prod")})
    rt = runtime({"dev": dev, "prod": prod}, cluster_files("svc", "dev", "prod"))

    found = change_deployments(rt, merged(SHA_A))

    assert found is not None and found.problem == ""
    assert [(d.environment, d.deployed) for d in found.deployments] == [
        ("dev", True),
        ("prod", False),
    ]
    assert change_deployments(rt, merged(None)) is None
    # A later merge on main that contains the change's: deployed too.
    later = runtime(
        {"dev": dev, "prod": prod},
        cluster_files("svc", "dev", "prod"),
        contained={(SHA_A, SHA_B)},
    )
    found = change_deployments(later, merged(SHA_A))
    assert found is not None
    assert [(d.environment, d.deployed) for d in found.deployments] == [
        ("dev", True),
        ("prod", True),
    ]
    assert change_deployments(rt, merged(SHA_A, ChangeStatus.READY)) is None
    off = change_deployments(None, merged(SHA_A))
    assert off is not None and off.problem == NOT_CONFIGURED


def test_an_applied_commit_the_clone_does_not_know_is_not_a_deployment() -> None:
    row = to_row("dev", status(applied=SHA_B), shared=False, now=datetime.now(UTC))

    def unknown(commit: str, of: str) -> bool:
        raise GitOpsError(f"fatal: Not a valid commit name {of}")

    assert applied(row, SHA_A, unknown) is False
    assert applied(row, SHA_B, unknown) is True  # the merge commit itself needs no git
    flag = to_row("dev", status(applied="--upload-pack=x"), shared=False, now=datetime.now(UTC))
    assert applied(flag, SHA_A, unknown) is False  # never handed to git
