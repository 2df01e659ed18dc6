"""A generated service's locks, and fresh virtualenvs installed from them for its tests.

Every template ships ``requirements.lock`` (what the image runs) and
``requirements-test.lock`` (that plus the test extra and the build backend, what CI
installs): exact pins with hashes. The suite never reaches a registry, so ``make
wheelhouse`` (a step of ``make test``) downloads every locked wheel into
``.tools/wheelhouse``; a lock's venv is installed from there with ``--no-index --no-deps``
and cached under ``.tools/template-venvs/`` by the lock's sha256. A cached venv is never
changed after it is built: the generated tests import ``app`` from the rendered folder
(its ``pythonpath``), and whether the lock satisfies the service is asked with a dry run.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tests.conftest import require_integration
from tests.templates.service_process import bytecode_env

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = REPO / ".tools" / "wheelhouse"
VENVS = REPO / ".tools" / "template-venvs"
RUNTIME_LOCK = "requirements.lock"
TEST_LOCK = "requirements-test.lock"
MAKE_TARGET = "`make wheelhouse` (a step of `make test`)"
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)(\s*;.*)?$")
_HASH = re.compile(r"^--hash=sha256:(?P<digest>[0-9a-f]{64})$")


class LockError(ValueError):
    """A lock line that is not an exact, hash-checked pin (the message names file and line)."""


@dataclass(frozen=True)
class Pin:
    """One locked distribution: its normalized name, exact version and allowed sha256s."""

    name: str
    version: str
    hashes: frozenset[str]


def normalize(name: str) -> str:
    """Return the PEP 503 form of a distribution name (``Jinja2`` -> ``jinja2``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, Pin]:
    """Parse a hashed requirements lock into pins by name; anything looser is a LockError."""
    pins: dict[str, Pin] = {}
    logical: list[tuple[int, str]] = []
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        if pending + line:
            logical.append((start, pending + line))
        pending = ""
    for number, line in logical:
        where = f"{path}:{number}"
        spec, *options = line.split(" --")
        pin = _PIN.match(spec.strip())
        if pin is None:
            raise LockError(f"{where}: {spec.strip()!r} is not an exact pin (name==version)")
        hashes = set()
        for option in options:
            found = _HASH.match("--" + option.strip())
            if found is None:
                raise LockError(f"{where}: unexpected option --{option.strip()}")
            hashes.add(found["digest"])
        name = normalize(pin["name"])
        if not hashes:
            raise LockError(f"{where}: {name} has no --hash (pip install --require-hashes)")
        if name in pins:
            raise LockError(f"{where}: {name} is pinned twice")
        pins[name] = Pin(name, pin["version"], frozenset(hashes))
    return pins


@cache
def _digests(files: tuple[tuple[str, int, int], ...]) -> frozenset[str]:
    return frozenset(
        hashlib.sha256((WHEELHOUSE / name).read_bytes()).hexdigest() for name, _, _ in files
    )


def wheelhouse_digests() -> frozenset[str]:
    """Return the sha256 of every file in the wheelhouse (hashed once per content listing)."""
    if not WHEELHOUSE.is_dir():
        return frozenset()
    files = tuple(
        sorted(
            (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
            for entry in WHEELHOUSE.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        )
    )
    return _digests(files)


def require_wheelhouse(lock: Path) -> None:
    """Skip (fail with PORTAL_REQUIRE_INTEGRATION=1) unless the wheelhouse holds every pin."""
    available = wheelhouse_digests()
    missing = [
        f"{p.name}=={p.version}" for p in read_lock(lock).values() if not p.hashes & available
    ]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        require_integration(
            f"the wheelhouse {WHEELHOUSE} lacks {shown} of {lock.name}: run {MAKE_TARGET}"
        )


_NOT_INHERITED = frozenset(
    {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"}
)


def isolated_env() -> dict[str, str]:
    """Return the environment for pip and the generated tests: no pip config, no PYTHONPATH.

    The machine's pip configuration (extra indexes, constraints) must not change what a
    lock installs, and the portal's own venv must not leak into the service's. Where
    compiled modules go is :func:`bytecode_env`'s to say: a PYTHONDONTWRITEBYTECODE of
    the machine's made the generated tests compile every import of a venv installed
    without byte-compiling, at every run.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PIP_") and key not in _NOT_INHERITED
    }
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def pip(python: Path, *args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run the portal's pip on ``python``'s environment (the venvs have no pip of their own)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=isolated_env(),
        check=False,
    )


def _build(venv: Path, lock: Path) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # No byte-compiling at install: it took 16 of a venv's 21 CPU seconds, for every module
    # of every package; the first run of a service compiles only what it imports, once.
    installed = pip(python, "install", "--quiet", "--no-compile", "--no-index", "--find-links",
                    WHEELHOUSE, "--no-deps", "--require-hashes", "-r", lock)  # fmt: skip
    if installed.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise AssertionError(f"{lock} does not install with --no-deps:\n{installed.stderr}")


def lock_venv(lock: Path, template: str) -> Path:
    """Return the python of a venv holding exactly ``lock``'s packages, built on first use.

    Keyed by template, lock name, Python version and the lock's sha256, so a changed lock
    gets a new venv; older venvs of the same lock name are removed. Concurrent test runs
    wait for one another on a file lock instead of building the same venv twice.
    """
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    prefix = (
        f"{template}-{lock.name.removesuffix('.lock')}-py{sys.version_info[0]}{sys.version_info[1]}"
    )
    venv = VENVS / f"{prefix}-{digest}"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    require_wheelhouse(lock)  # also for a cached venv: the dry runs build from the wheelhouse
    if ready.is_file():
        return python
    VENVS.mkdir(parents=True, exist_ok=True)
    with (VENVS / f"{venv.name}.build-lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not ready.is_file():
            _build(venv, lock)
            ready.write_text(f"{lock}\n", encoding="utf-8")
            for older in VENVS.glob(f"{prefix}-*"):
                if older.name.startswith(venv.name):
                    continue
                if older.is_dir():
                    shutil.rmtree(older, ignore_errors=True)
                else:
                    older.unlink(missing_ok=True)  # its build lock
    return python


def unlocked_requirements(
    python: Path, service: Path, extras: str = "", *, isolated_build: bool = True
) -> list[str]:
    """Return what installing ``service`` would add to the lock's venv (empty: the lock suffices).

    A dry run, offline, from the wheelhouse: a requirement the lock does not satisfy is
    either resolved to another wheel (returned as ``name==version``) or fails (raised).
    ``isolated_build=False`` builds with the venv's own backend, as the generated CI does.
    """
    options = [] if isolated_build else ["--no-build-isolation"]
    with tempfile.TemporaryDirectory(prefix="pip-report-") as scratch:
        report = Path(scratch) / "report.json"
        dry = pip(python, "install", "--dry-run", "--quiet", "--no-index", "--find-links",
                  WHEELHOUSE, *options, "--report", report, f"{service}{extras}")  # fmt: skip
        if dry.returncode != 0:
            raise AssertionError(f"the lock does not satisfy {service.name}:\n{dry.stderr}")
        planned = json.loads(report.read_text(encoding="utf-8"))["install"]
    return [
        f"{item['metadata']['name']}=={item['metadata']['version']}"
        for item in planned
        if "dir_info" not in item["download_info"]  # the service itself
    ]


def run_generated_tests(
    service: Path, template: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run a rendered service's own tests in the venv of its test lock; return the result.

    Before the tests, the lock must satisfy the service's requirements with its test extra
    (nothing the dry run would add), so a stale lock fails here and not in the service's CI.
    """
    python = lock_venv(service / TEST_LOCK, template)
    extra = unlocked_requirements(python, service, "[test]", isolated_build=False)
    assert extra == [], f"{TEST_LOCK} of {service.name} misses {extra}"
    env = isolated_env() | bytecode_env()
    # What is printed arrives as it is printed (a killed run keeps its last lines), and a
    # SIGABRT makes the interpreter print every thread's stack: a run past its budget says
    # where it is, even after its last test (a worker thread the exit waits for).
    env.update(PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    # A test stuck past a third of the budget has every thread's stack printed too.
    stuck = f"faulthandler_timeout={int(timeout // 3)}"
    # Its own base temp: by default pytest deletes, as it exits, the older numbered folders
    # of the user's shared temp root, whole trees that earlier runs on the machine left
    # there. A CI run of the aiops service's tests passed its 300 s budget still deleting.
    with tempfile.TemporaryDirectory(prefix="service-tests-") as basetemp:
        base = ["--basetemp", basetemp]
        command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", stuck, *base]
        stdout, stderr, returncode = _communicate(command, service, env, timeout)
    return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def _communicate(
    command: list[str], service: Path, env: dict[str, str], timeout: float
) -> tuple[str, str, int]:
    """Run ``command`` in ``service``; past ``timeout``, fail with its output and stacks."""
    with subprocess.Popen(
        command, cwd=service, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            try:
                stdout, stderr = process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            # The list of loaded extension modules that follows the stacks says nothing here.
            stacks = "\n".join(
                line for line in stderr.splitlines() if not line.startswith("Extension modules:")
            )
            raise AssertionError(
                f"the tests of {service.name} ran over {timeout:.0f} s; the end of what they"
                f" printed, then the stacks of its threads:\n{stdout[-4000:]}\n{stacks[-12000:]}"
            ) from None
    return stdout, stderr, process.returncode
