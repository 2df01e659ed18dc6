"""The AIOps detector's remediation code, run in this process against a served portal.

The template's ``app`` package is imported by its path under a private name, so its
relative imports (``proposals`` imports ``.remediation``) resolve as in the generated
service; names are looked up in whichever of its remediation modules defines them, so a
module split inside the template does not break the end-to-end test. The deployed state
the detector starts from is what ``main``'s overlay builds with the real ``kubectl
kustomize`` (what Flux would apply), read through the detector's own ``StateReader`` shape.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import io
import subprocess
import sys
import tarfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from portal.integrations.kubernetes import kustomize_build
from tests.templates.rendering import TEMPLATES_DIR

DETECTOR_APP = TEMPLATES_DIR / "aiops-detector" / "template" / "app"
PACKAGE = "aiops_e2e_detector_app"
# Where remediation names may live, the modules the template's own tests import from.
REMEDIATION_MODULES = ("proposals", "remediation", "rules")


def detector_modules() -> list[ModuleType]:
    """Import the template's ``app`` package by its path (once) and its remediation modules."""
    if PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACKAGE, DETECTOR_APP / "__init__.py", submodule_search_locations=[str(DETECTOR_APP)]
        )
        assert spec is not None
        assert spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package  # the submodules' relative imports resolve through it
        spec.loader.exec_module(package)
    return [
        importlib.import_module(f"{PACKAGE}.{name}")
        for name in REMEDIATION_MODULES
        if (DETECTOR_APP / f"{name}.py").is_file()
    ]


def detector_name(name: str) -> Any:
    """Return the template's object called ``name``, from whichever module defines it."""
    for module in detector_modules():
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"no module of {DETECTOR_APP} defines {name}")


def git(remote: Path, *args: str) -> str:
    """Run a read-only git command on the bare GitOps remote; return its output."""
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], capture_output=True, text=True, check=True
    ).stdout


def branches(remote: Path) -> list[str]:
    """Return every branch of the GitOps remote (a refused proposal adds none)."""
    return git(remote, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()


def main_objects(
    remote: Path, service: str, environment: str, scratch: Path, kubectl: Path
) -> dict[str, dict[str, Any]]:
    """Build the service's overlay as it is on ``main``; return its objects by kind."""
    archive = subprocess.run(
        ["git", "--git-dir", str(remote), "archive", "main", "--", f"services/{service}"],
        capture_output=True,
        check=True,
    ).stdout
    scratch.mkdir(parents=True, exist_ok=True)
    folder = scratch / f"main-{len(list(scratch.iterdir()))}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    overlay = folder / "services" / service / "deploy" / "overlays" / environment
    return {obj["kind"]: obj for obj in kustomize_build(overlay, kubectl=kubectl)}


def main_hpa_bounds(
    remote: Path, service: str, environment: str, scratch: Path, kubectl: Path
) -> tuple[int, int]:
    """Return ``(minReplicas, maxReplicas)`` of the HPA ``main``'s overlay builds."""
    spec = main_objects(remote, service, environment, scratch, kubectl)["HorizontalPodAutoscaler"]
    return int(spec["spec"]["minReplicas"]), int(spec["spec"]["maxReplicas"])


class MainOverlayState:
    """A detector ``StateReader``: the HPA bounds ``main``'s overlay builds (what runs)."""

    def __init__(self, remote: Path, scratch: Path, kubectl: Path) -> None:
        self.remote = remote
        self.scratch = scratch
        self.kubectl = kubectl
        self.reads = 0

    async def read(self, action: Any) -> Any:
        """Return a ``ServiceState`` with the bounds of the action's environment on main."""
        self.reads += 1
        low, high = await asyncio.to_thread(
            main_hpa_bounds,
            self.remote,
            action.service,
            action.environment,
            self.scratch,
            self.kubectl,
        )
        return detector_name("ServiceState")(min_replicas=low, max_replicas=high)


def anomaly(query: str, start: datetime, end: datetime, peak: float, severity: str) -> Any:
    """Return the template's ``AnomalyWindow`` of ``query`` (both detectors fired)."""
    return detector_name("AnomalyWindow")(query, start, end, peak, severity, "both", 1.0)


def _portal(portal_url: str, token: str, client: httpx.AsyncClient) -> Any:
    return detector_name("PortalClient")(portal_url, token, client)


def handle_window(
    portal_url: str,
    token: str,
    rules: str,
    window: Any,
    state: MainOverlayState,
    clock: Callable[[], datetime],
) -> tuple[list[Any], Any]:
    """Let a fresh detector (rules, portal client, log) handle ``window``.

    Returns the records ``Remediations.handle`` made and the ``Remediations`` (its log).
    The HTTP client is a real one, without proxies from the environment (loopback only).
    """

    async def run() -> tuple[list[Any], Any]:
        async with httpx.AsyncClient(trust_env=False) as client:
            config = detector_name("load_config")(rules)
            remediator = detector_name("Remediator")(config, clock)
            remediations = detector_name("Remediations")(
                remediator, state, _portal(portal_url, token, client)
            )
            records = await remediations.handle(window)
            return records, remediations

    return asyncio.run(run())


def propose_payload(portal_url: str, token: str, payload: dict[str, Any]) -> Any:
    """Send a hand-made payload through the detector's ``PortalClient``; return its outcome."""

    async def run() -> Any:
        async with httpx.AsyncClient(trust_env=False) as client:
            return await _portal(portal_url, token, client).propose(payload)

    return asyncio.run(run())
