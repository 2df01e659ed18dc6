"""Reading Flux Kustomizations through the real ``kubernetes`` client from a loopback API server."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from pydantic import ValidationError

from portal.config import Settings
from portal.config_kubernetes import parse_kube_contexts
from portal.integrations.flux_status import (
    FakeFluxStatusSource,
    FluxClusters,
    FluxStatusError,
    KubernetesFluxStatusSource,
    KustomizationStatus,
    kubeconfig_client,
    parse_kustomization,
)
from tests.integrations.flux_api_support import (
    APPLIED_SHA,
    ATTEMPTED_SHA,
    DATA,
    FAILED_PROD,
    FORBIDDEN,
    KUSTOMIZATIONS,
    NOT_FOUND,
    PROGRESSING,
    READY_DEV,
    Answer,
    kube_api,
    write_kubeconfig,
)
from tests.loopback_http import serving


def recorded(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


def source_for(kubeconfig: Path, context: str, timeout: float = 2.0) -> KubernetesFluxStatusSource:
    make = kubeconfig_client(kubeconfig, context)
    return KubernetesFluxStatusSource(make, label=f"context {context}", timeout=timeout)


def test_the_recorded_objects_read_into_their_status() -> None:
    ready = parse_kustomization(recorded("kustomization-ready-dev.json"))
    failed = parse_kustomization(recorded("kustomization-failed-prod.json"))
    progressing = parse_kustomization(recorded("kustomization-progressing-staging.json"))

    assert (ready.namespace, ready.name, ready.ready) == ("flux-system", "air-quality", "True")
    assert ready.reason == "ReconciliationSucceeded"
    assert ready.last_applied_revision == f"main@sha1:{APPLIED_SHA}"
    assert ready.observed_at == datetime(2026, 12, 7, 9, 58, 3, tzinfo=UTC)
    assert ready.path == "./services/air-quality/deploy/overlays/dev"
    # The Ready condition is read, not the first one nor the Healthy one beside it.
    assert (failed.ready, failed.reason) == ("False", "HealthCheckFailed")
    assert failed.message.startswith("health check failed after 5m0s")
    assert failed.last_attempted_revision == f"main@sha1:{ATTEMPTED_SHA}"
    assert (progressing.ready, progressing.reason) == ("Unknown", "Progressing")
    assert progressing.last_applied_revision == ""


def test_an_object_without_status_has_no_ready_condition() -> None:
    fresh = parse_kustomization({"metadata": {"name": "x", "namespace": "flux-system"}})
    odd = parse_kustomization({"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}})

    assert fresh.ready is None and fresh.last_applied_revision == "" and fresh.observed_at is None
    assert odd.ready is None


def test_the_client_reads_a_kustomization_with_the_contexts_token(tmp_path: Path) -> None:
    with kube_api({"dev-token": {"air-quality": READY_DEV}}) as (api, port):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"dev": "dev-token"})
        found = source_for(kubeconfig, "dev").kustomization("flux-system", "air-quality")

    assert found == parse_kustomization(recorded("kustomization-ready-dev.json"))
    assert api.requests == [(f"{KUSTOMIZATIONS}air-quality", "Bearer dev-token")]


def test_a_missing_kustomization_is_none_not_an_error(tmp_path: Path) -> None:
    with kube_api({"dev-token": {"air-quality": NOT_FOUND}}) as (api, port):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"dev": "dev-token"})
        assert source_for(kubeconfig, "dev").kustomization("flux-system", "air-quality") is None
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("forbidden-token", "forbids the portal to read Kustomizations (403 Forbidden)"),
        ("wrong-token", "refused the portal's credentials (401 Unauthorized)"),
    ],
)
def test_a_refusal_says_what_the_cluster_refused(tmp_path: Path, token: str, expected: str) -> None:
    with kube_api({"forbidden-token": {"air-quality": FORBIDDEN}}) as (_api, port):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"prod": token})
        with pytest.raises(FluxStatusError) as raised:
            source_for(kubeconfig, "prod").kustomization("flux-system", "air-quality")

    assert str(raised.value) == f"context prod {expected}" + (
        ": grant get on kustomizations.kustomize.toolkit.fluxcd.io" if "403" in expected else ""
    )


def test_a_slow_cluster_is_given_up_on_after_the_timeout(tmp_path: Path) -> None:
    slow = Answer(200, "kustomization-ready-dev.json", delay=8.0)  # far past the timeout
    with kube_api({"dev-token": {"air-quality": slow}}) as (api, port):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"dev": "dev-token"})
        started = time.monotonic()
        with pytest.raises(FluxStatusError, match=r"did not answer within 0\.3 s"):
            source_for(kubeconfig, "dev", timeout=0.3).kustomization("flux-system", "air-quality")
        waited = time.monotonic() - started

    assert waited < 4
    assert len(api.requests) == 1  # no retry


def test_a_cluster_that_refuses_connections_is_unreachable_at_once(tmp_path: Path) -> None:
    with serving(BaseHTTPRequestHandler, "closed") as port:
        pass  # the port is free again: nothing listens there
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"dev": "dev-token"})
    started = time.monotonic()

    with pytest.raises(FluxStatusError, match="context dev is unreachable"):
        source_for(kubeconfig, "dev").kustomization("flux-system", "air-quality")

    assert time.monotonic() - started < 1.5


def test_names_are_checked_before_any_request(tmp_path: Path) -> None:
    with kube_api({"dev-token": {}}) as (api, port):
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", port, {"dev": "dev-token"})
        source = source_for(kubeconfig, "dev")
        with pytest.raises(FluxStatusError, match="not a DNS-1123 subdomain"):
            source.kustomization("flux-system", "../../secrets")
        with pytest.raises(FluxStatusError, match="not a DNS-1123 label"):
            source.kustomization("Flux_System", "air-quality")
    assert api.requests == []


def test_each_environment_reads_its_own_context(tmp_path: Path) -> None:
    answers = {"dev-token": {"air-quality": READY_DEV}, "prod-token": {"air-quality": FAILED_PROD}}
    with kube_api(answers) as (api, port):
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", port, {"ctx-a": "dev-token", "ctx-b": "prod-token"}
        )
        clusters = FluxClusters(kubeconfig, False, {"dev": "ctx-a", "prod": "ctx-b"})
        dev, prod = clusters.for_environment("dev"), clusters.for_environment("prod")
        assert dev is not None and prod is not None
        assert clusters.for_environment("staging") is None  # not listed: no cluster
        assert clusters.for_environment("dev") is dev  # one client per context
        dev_status = dev.kustomization("flux-system", "air-quality")
        prod_status = prod.kustomization("flux-system", "air-quality")
        clusters.close()

    assert dev_status is not None and dev_status.ready == "True"
    assert prod_status is not None and prod_status.ready == "False"
    assert [auth for _path, auth in api.requests] == ["Bearer dev-token", "Bearer prod-token"]
    assert not clusters.shared


def test_without_contexts_every_environment_reads_the_current_context(tmp_path: Path) -> None:
    with kube_api({"b-token": {"air-quality": PROGRESSING}}) as (api, port):
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", port, {"a": "a-token", "b": "b-token"}, current="b"
        )
        clusters = FluxClusters(kubeconfig, False)
        source = clusters.for_environment("prod")
        assert source is not None and clusters.shared
        assert clusters.for_environment("dev") is source
        status = source.kustomization("flux-system", "air-quality")

    assert status is not None and status.ready == "Unknown"
    assert api.requests[0][1] == "Bearer b-token"


def test_a_missing_kubeconfig_is_reported_when_read_and_read_again_later(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    clusters = FluxClusters(kubeconfig, False, {"dev": ""})
    source = clusters.for_environment("dev")
    assert source is not None

    with pytest.raises(FluxStatusError, match=f"kubeconfig {kubeconfig} is not a file"):
        source.kustomization("flux-system", "air-quality")
    with kube_api({"dev-token": {"air-quality": READY_DEV}}) as (_api, port):
        write_kubeconfig(kubeconfig, port, {"dev": "dev-token"})  # fixed on disk
        found = source.kustomization("flux-system", "air-quality")
    assert found is not None and found.ready == "True"


def test_an_unknown_context_is_reported(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", 9, {"dev": "dev-token"})
    source = FluxClusters(kubeconfig, False, {"dev": "nope"}).for_environment("dev")
    assert source is not None

    with pytest.raises(FluxStatusError, match=r"context nope.*nope"):
        source.kustomization("flux-system", "air-quality")


def test_in_cluster_outside_a_pod_says_so() -> None:
    source = FluxClusters(None, True).for_environment("dev")
    assert source is not None

    with pytest.raises(FluxStatusError, match="the portal's cluster"):
        source.kustomization("flux-system", "air-quality")


def test_the_fake_answers_and_raises_what_it_holds() -> None:
    status = KustomizationStatus("flux-system", "a", "True")
    fake = FakeFluxStatusSource({("flux-system", "a"): status, ("flux-system", "b"): OSError("x")})

    assert fake.kustomization("flux-system", "a") is status
    assert fake.kustomization("flux-system", "c") is None
    with pytest.raises(OSError):
        fake.kustomization("flux-system", "b")
    assert fake.reads == [("flux-system", "a"), ("flux-system", "c"), ("flux-system", "b")]


def test_environment_contexts_are_read_from_one_variable() -> None:
    assert parse_kube_contexts("dev=ctx-a, prod = ctx-b,staging") == {
        "dev": "ctx-a",
        "prod": "ctx-b",
        "staging": "",
    }
    with pytest.raises(ValueError, match="'Dev' is not an environment name"):
        parse_kube_contexts("Dev=ctx")
    with pytest.raises(ValueError, match="repeated"):
        parse_kube_contexts("dev=a,dev=b")


def test_settings_refuse_two_credential_sources_and_contexts_without_a_kubeconfig(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PORTAL_KUBE_CONTEXTS", "dev=ctx-a,prod")
    monkeypatch.setenv("PORTAL_KUBECONFIG", str(tmp_path / "kubeconfig"))
    read = Settings(data_dir=tmp_path)
    assert read.kube_contexts == {"dev": "ctx-a", "prod": ""}

    monkeypatch.setenv("PORTAL_KUBERNETES", "in-cluster")
    with pytest.raises(ValidationError, match="not both"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("PORTAL_KUBECONFIG")
    with pytest.raises(ValidationError, match="need PORTAL_KUBECONFIG"):
        Settings(data_dir=tmp_path)
    monkeypatch.setenv("PORTAL_KUBE_CONTEXTS", "prod")
    assert Settings(data_dir=tmp_path).kube_contexts == {"prod": ""}
