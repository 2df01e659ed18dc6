"""Portal settings, read from the environment (prefix ``PORTAL_``)."""

from __future__ import annotations

import os
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from portal.config_kubernetes import KubernetesSettings
from portal.config_traces import TraceSettings
from portal.integrations.git_sources import KNOWN_SCHEMES

SHARED_MEMORY = Path("/dev/shm")  # noqa: S108 (only ever the parent of mkdtemp folders)
SCRATCH_MIN_FREE = 1 << 30  # a container's default 64 MiB /dev/shm is too small to count on
# Where `portal serve` listens by default, and the path that serves the template repositories.
DEFAULT_TEMPLATE_BASE_URL = "http://127.0.0.1:8000/templates.git"
# The checkout the portal runs from (an editable install): where `make tools` builds tools.
CHECKOUT = Path(__file__).resolve().parent.parent


# Where the URL settings end up, which is why they must not carry credentials.
_URL_SHOWN = {
    "template_public_base_url": "it is written into git",
    "mlflow_url": "it is shown on the Models page and in the log",
    "tempo_url": "it is shown on the Traces page and in the log",
}


class AuthMode(StrEnum):
    """How the portal learns who is making a request."""

    LOCAL = "local"
    TRUSTED_HEADER = "trusted-header"


class Settings(KubernetesSettings, TraceSettings):
    """Everything the portal can be configured with; every field maps to ``PORTAL_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"),
        validate_default=True,
        description="Where the portal keeps its state; a relative path is taken from the "
        "current folder once, when the settings are read.",
    )
    database_url: str | None = None
    secret_key: str | None = Field(
        default=None,
        description="Signs session cookies; generated and kept in the data dir when unset.",
    )
    auth_mode: AuthMode = AuthMode.LOCAL
    user_header: str = "X-Forwarded-User"
    groups_header: str = "X-Forwarded-Groups"
    admin_group: str = "platform-admins"
    catalog_paths: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["catalog"])
    catalog_max_file_bytes: int = 2 * 1024 * 1024
    catalog_max_aliases: int = 100
    max_body_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Largest request body (JSON or form) the portal reads; larger ones get 413.",
    )
    gitops_remote: str | None = Field(
        default=None,
        description="URL of the Flux-watched repository; unset: a local bare repo in the data dir.",
    )
    gitops_branch: str = "main"
    gitops_request_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a request waits for the GitOps remote (fetch, push) or a busy "
        "clone before it answers 503; the background worker keeps its own longer limit.",
    )
    gitops_seed_dir: Path = Path("gitops-repo")
    templates_dir: Path = Path("templates")
    template_url_schemes: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https", "ssh"],
        description="URL schemes templates may be registered from (https, http, ssh, git, "
        "file); file only when listed.",
    )
    template_url_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts templates may be registered from; empty: any host whose addresses "
        "are all public (never loopback, private or link-local).",
    )
    template_public_base_url: str | None = Field(
        default=None,
        description="URL under which other machines reach the portal's read-only git "
        "service of its bundled templates (the portal's /templates.git); recorded as "
        "`_src_path` in every service's .copier-answers.yml. Unset: `portal serve` derives "
        f"it from its address, anything else uses {DEFAULT_TEMPLATE_BASE_URL}.",
    )
    environments: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Environments services may deploy to, in this order; each needs its "
        "cluster folder clusters/<env>/ in the GitOps repository. Empty: every cluster folder "
        "of the repository's main, development first and production last.",
    )
    run_worker: bool = Field(
        default=True, description="Process scaffold jobs in background threads of the app."
    )
    check_workers: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="How many changes the review checks run on at once; unset: one per core.",
    )
    git_author_name: str = "Platform portal"
    git_author_email: str = "portal@platform.invalid"
    kubernetes_version: str = Field(
        default="1.33",
        pattern=r"^1\.[0-9]{1,2}$",
        description="Kubernetes version manifests are validated against (kubernetes-validate).",
    )
    error_budget_dir: Path = Field(
        default=Path("sre/error-budgets"),
        description="Error-budget policies, enforced as a review check on a service's changes.",
    )
    promtool_path: Path | None = Field(
        default=None, description="promtool executable of the SLO rule check; unset: PATH."
    )
    checkov_path: Path | None = Field(
        default=None,
        description="checkov executable; unset: `.tools/checkov/bin/checkov` under the current "
        "folder (where `make tools` installs it), else `checkov` on PATH.",
    )
    # Overlays pin image tags that Flux image automation bumps; a digest would freeze them.
    checkov_skip_checks: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["CKV_K8S_43"]
    )
    checkov_error_checks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="checkov check ids that block a change (others are advisory warnings).",
    )
    rag_eval_python: Path | None = Field(
        default=None,
        description="Python of the RAG services' evaluator (the `rag eval` review check); unset: "
        "`.tools/rag-eval/bin/python` of the portal's checkout (where `make tools` builds it).",
    )
    rag_eval_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        allow_inf_nan=False,
        description="How long one run of a RAG service's evaluator may take.",
    )
    cost_max_monthly_usd: float = Field(
        default=100_000,
        gt=0,
        allow_inf_nan=False,
        description="A change estimated above this per month (the price sheet's currency) "
        "fails its cost check.",
    )
    session_cookie: str = "portal_session"
    secure_cookies: bool = False
    prometheus_url: str | None = Field(
        default=None,
        description="Prometheus (or Thanos) the SLO pages query; unset: `portal serve` starts "
        "the `prometheus` binary on loopback when it is on PATH.",
    )
    prometheus_timeout_seconds: float = Field(default=5.0, gt=0)
    opencost_url: str | None = Field(
        default=None,
        description="OpenCost API (its `/allocation` JSON) the cost figures prefer; unset: none.",
    )
    cost_cluster_label: str = Field(
        default="cluster",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="label of the kube-state-metrics and cAdvisor series naming their cluster "
        "(the environment) for the measured cost from Prometheus.",
    )
    cost_query_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="per query of the measured cost refresh (OpenCost, Prometheus): it runs in "
        "the background, and a first load reads two months of history.",
    )
    prometheus_path: Path | None = Field(
        default=None, description="prometheus executable of the local Prometheus; unset: PATH."
    )
    prometheus_port: int = Field(
        default=9090, ge=0, le=65535, description="Port of the local Prometheus (busy: any free)."
    )
    prometheus_scrape_targets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Local services the local Prometheus scrapes: job=host:port[/path], ...",
    )
    mlflow_url: str | None = Field(
        default=None,
        description="MLflow tracking server whose model registry the Models page reads and "
        "promotes from; unset: `portal serve` starts the MLflow of `make tools` on loopback "
        "with its data in `<data dir>/mlflow`.",
    )
    mlflow_path: Path | None = Field(
        default=None,
        description="mlflow executable of the local MLflow server; unset: "
        "`.tools/mlflow/bin/mlflow` under the current folder (where `make tools` installs it).",
    )
    mlflow_port: int = Field(
        default=5000,
        ge=0,
        le=65535,
        description="Port of the local MLflow server (busy: any free).",
    )
    mlflow_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="How long one request to MLflow may take before the Models page says it "
        "is unreachable.",
    )
    tempo_url: str | None = Field(
        default=None,
        description="Grafana Tempo the Traces pages query; unset: the portal's own store, "
        "fed by its OTLP receiver (/v1/traces answers 404 while Tempo is set).",
    )
    tempo_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        allow_inf_nan=False,
        description="How long one request to Tempo may take.",
    )
    scratch_dir: Path | None = Field(
        default=None,
        description="Where renders are written before they are committed; unset: /dev/shm "
        f"when it is a writable folder with {SCRATCH_MIN_FREE >> 30} GiB free, else the "
        "system temp folder.",
    )
    slo_paths: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["sre/slos"],
        description="SLO specs of the platform itself (services/*/slo.yaml are read from GitOps).",
    )

    @field_validator(
        "catalog_paths",
        "environments",
        "checkov_skip_checks",
        "checkov_error_checks",
        "prometheus_scrape_targets",
        "slo_paths",
        "template_url_schemes",
        "template_url_hosts",
        mode="before",
    )
    @classmethod
    def _split_paths(cls, value: object) -> object:
        """Accept a comma-separated list from the environment."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        """Anchor the data dir to the current folder now.

        Children run in folders of their own (the local Prometheus in
        ``<data dir>/prometheus``), where a relative path would point somewhere else.
        """
        return value.absolute()

    @field_validator("template_public_base_url", "mlflow_url", "tempo_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Accept an http(s) URL without credentials, query or fragment (no trailing slash)."""
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or not value.isprintable():
            raise ValueError(f"{value!r} is not an http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            shown = _URL_SHOWN[info.field_name or ""]
            raise ValueError(f"the URL must not carry credentials: {shown}")
        if " " in value or "?" in value or "#" in value:
            raise ValueError(f"{value!r} must have no spaces, query or fragment")
        return value

    def template_base_url(self) -> str:
        """Return the public base URL of the bundled templates' git repositories."""
        return self.template_public_base_url or DEFAULT_TEMPLATE_BASE_URL

    @field_validator("template_url_schemes")
    @classmethod
    def _known_schemes(cls, value: list[str]) -> list[str]:
        """Refuse template URL schemes the portal does not know (``ext`` runs commands)."""
        schemes = [scheme.lower() for scheme in value]
        if unknown := sorted(set(schemes) - KNOWN_SCHEMES):
            known = ", ".join(sorted(KNOWN_SCHEMES))
            raise ValueError(f"unknown template URL schemes {unknown} (known: {known})")
        return schemes

    def resolved_database_url(self) -> str:
        """Return the SQLAlchemy URL: PostgreSQL when configured, else SQLite in the data dir."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.data_dir / 'portal.db').resolve()}"

    def resolved_scratch_dir(self) -> Path | None:
        """Return the folder for scratch files (None: the system temp folder).

        A render writes a few dozen small files and reads them straight back: on a busy
        disk each new file costs about a millisecond, in memory next to nothing.
        """
        if self.scratch_dir is not None:
            return self.scratch_dir
        try:
            if not (SHARED_MEMORY.is_dir() and os.access(SHARED_MEMORY, os.W_OK | os.X_OK)):
                return None
            space = os.statvfs(SHARED_MEMORY)
        except OSError:
            return None
        return SHARED_MEMORY if space.f_bavail * space.f_frsize >= SCRATCH_MIN_FREE else None

    def resolved_rag_eval_python(self) -> Path | None:
        """Return the RAG evaluator's Python: the configured one, else ``make tools``' if built."""
        if self.rag_eval_python is not None:
            return self.rag_eval_python.absolute()
        built = CHECKOUT / ".tools" / "rag-eval" / "bin" / "python"
        return built if built.is_file() else None

    def resolved_secret_key(self) -> str:
        """Return the signing key, creating a random one in the data dir on first use."""
        if self.secret_key:
            return self.secret_key
        key_file = self.data_dir / "secret.key"
        if key_file.exists():
            return key_file.read_text(encoding="utf-8").strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key, encoding="utf-8")
        key_file.chmod(0o600)
        return key


def normalize_database_url(url: str) -> str:
    """Point plain ``postgresql://`` URLs at the psycopg 3 driver the portal ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings read from the environment."""
    return Settings()
