"""Helpers shared by the GitOps writer tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from portal.config import Settings
from tests.conftest import REPO

SEED = REPO / "gitops-repo"
ANN = ("Ann Author", "ann@example.org")
REX = ("Rex Reviewer", "rex@example.org")


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def make_settings(data_dir: Path, remote: str | None = None) -> Settings:
    return Settings(
        data_dir=data_dir,
        gitops_seed_dir=SEED,
        gitops_remote=remote,
        catalog_paths=[],
        secret_key="x",
    )


def service_files(name: str) -> dict[str, bytes]:
    files = {
        f"services/{name}/app.py": f"print('{name}')\n".encode(),
        f"services/{name}/deploy/base/kustomization.yaml": b"resources: []\n",
    }
    for env in ("dev", "staging", "prod"):
        files[f"clusters/{env}/services/{name}.yaml"] = f"name: {name}-{env}\n".encode()
    return files


def remote_dir(settings: Settings) -> Path:
    return settings.data_dir / "gitops" / "remote.git"


def remote_sha(settings: Settings, ref: str) -> str:
    return git("--git-dir", str(remote_dir(settings)), "rev-parse", ref)


def seed_files() -> list[str]:
    return sorted(p.relative_to(SEED).as_posix() for p in SEED.rglob("*") if p.is_file())
