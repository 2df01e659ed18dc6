"""Every template's locks: exact hash-checked pins, complete, satisfying the service, and the
only thing its Dockerfile and CI install from. Rendered with the Copier CLI, as a newcomer
would (no ``--trust``: the templates must not need it)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from tests.templates.service_venv import (
    MAKE_TARGET,
    RUNTIME_LOCK,
    TEST_LOCK,
    LockError,
    lock_venv,
    normalize,
    pip,
    read_lock,
    require_wheelhouse,
    unlocked_requirements,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(path.parent.name for path in (REPO / "templates").glob("*/template.yaml"))
HASH = "--hash=sha256:" + "ab" * 32


class Rendered(NamedTuple):
    template: str
    dest: Path


@pytest.fixture(scope="module", params=TEMPLATES)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    template = str(request.param)
    dest = tmp_path_factory.mktemp(template) / "lock-check"
    answers = ["name=lock-check", "owner=platform-team", "description=Checks the locks"]
    command = [sys.executable, "-m", "copier", "copy", "--quiet", "--defaults"]
    command += [part for answer in answers for part in ("--data", answer)]
    done = subprocess.run(
        [*command, str(REPO / "templates" / template), str(dest)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return Rendered(template, dest)


def requirement_names(requirements: list[str]) -> set[str]:
    return {
        normalize(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])
        for requirement in requirements
    }


def test_the_locks_pin_every_package_exactly_and_the_image_runs_what_ci_tests(
    rendered: Rendered,
) -> None:
    template, service = REPO / "templates" / rendered.template / "template", rendered.dest
    for name in (RUNTIME_LOCK, TEST_LOCK):
        assert (service / name).read_bytes() == (template / name).read_bytes(), name
    runtime, test = read_lock(service / RUNTIME_LOCK), read_lock(service / TEST_LOCK)
    assert {name: test[name] for name in runtime if name in test} == runtime
    project = tomllib.loads((service / "pyproject.toml").read_text(encoding="utf-8"))
    direct = requirement_names(project["project"]["dependencies"])
    assert direct <= set(runtime), direct - set(runtime)
    tools = requirement_names(project["project"]["optional-dependencies"]["test"])
    backend = requirement_names(project["build-system"]["requires"])
    assert tools | backend <= set(test), (tools | backend) - set(test)
    assert not backend & set(runtime)  # the image gets no build backend
    # Starlette's TestClient warns on plain httpx, and the generated tests turn warnings into
    # errors: the test lock must bring httpx2.
    assert "httpx2" in test


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK])
def test_each_lock_installs_alone_without_dependencies_and_pip_check_passes(
    rendered: Rendered, lock: str
) -> None:
    python = lock_venv(rendered.dest / lock, rendered.template)
    checked = pip(python, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = pip(python, "list", "--format=json")
    assert listed.returncode == 0, listed.stderr
    installed: list[dict[str, Any]] = json.loads(listed.stdout)
    pins = read_lock(rendered.dest / lock)
    assert {normalize(item["name"]): item["version"] for item in installed} == {
        name: pin.version for name, pin in pins.items()
    }


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, TEST_LOCK])
def test_the_lock_satisfies_the_rendered_service(rendered: Rendered, lock: str) -> None:
    python = lock_venv(rendered.dest / lock, rendered.template)
    if lock == TEST_LOCK:  # as CI installs it: with its test extra, built by the lock's backend
        extra = unlocked_requirements(python, rendered.dest, "[test]", isolated_build=False)
    else:  # as the Dockerfile installs it
        extra = unlocked_requirements(python, rendered.dest)
    assert extra == []


def run_steps(workflow: dict[str, Any]) -> list[str]:
    return [
        step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step
    ]


def test_the_dockerfile_and_ci_install_only_from_the_locks(rendered: Rendered) -> None:
    service = rendered.dest
    dockerfile = (service / "Dockerfile").read_text(encoding="utf-8")
    docker_installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert len(docker_installs) == 2, docker_installs
    locked, itself = docker_installs
    assert "--require-hashes --no-deps -r requirements.lock" in locked
    assert itself.endswith("--no-deps .")
    assert dockerfile.index("COPY requirements.lock") < dockerfile.index(locked)
    assert "requirements.lock" not in (service / ".dockerignore").read_text(encoding="utf-8")

    workflow = yaml.safe_load((service / ".github" / "workflows" / "ci.yaml").read_text())
    steps = run_steps(workflow)
    ci_installs = [step for step in steps if "pip install" in step]
    assert ci_installs == [
        "python -m pip install --require-hashes --no-deps -r requirements-test.lock",
        "python -m pip install --no-deps --no-build-isolation -e .",
    ]
    assert steps.index("python -m pip check") < steps.index("pytest")
    setup = [
        s for s in workflow["jobs"]["lint-and-test"]["steps"] if "setup-python" in s.get("uses", "")
    ]
    assert setup[0]["with"]["cache-dependency-path"] == TEST_LOCK


# --- the lock reader and the wheelhouse guard: pure logic --------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"fastapi>=0.115 \\\n    {HASH}\n", r"lock:1: 'fastapi>=0.115' is not an exact pin"),
        ("# header\nfastapi==0.165.0\n", r"lock:2: fastapi has no --hash"),
        (f"a==1 {HASH}\nA==2 {HASH}\n", r"lock:2: a is pinned twice"),
        (f"a==1 \\\n    --index-url=http://x {HASH}\n", r"lock:1: unexpected option --index-url"),
    ],
)
def test_a_loose_lock_is_refused_naming_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    lock = tmp_path / "lock"
    lock.write_text(text, encoding="utf-8")
    with pytest.raises(LockError, match=message):
        read_lock(lock)


def test_a_lock_reads_continuations_comments_and_markers(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    lock.write_text(
        "# via pip-compile\n"
        f"Jinja2==3.1.6 \\\n    {HASH} \\\n    --hash=sha256:{'cd' * 32}\n    # via app\n"
        f'tomli==2.0.1 ; python_version < "3.11" \\\n    {HASH}\n',
        encoding="utf-8",
    )
    pins = read_lock(lock)
    assert sorted(pins) == ["jinja2", "tomli"]
    assert pins["jinja2"].version == "3.1.6" and pins["jinja2"].hashes == {"ab" * 32, "cd" * 32}


def test_a_missing_wheel_skips_naming_the_make_target_and_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = tmp_path / RUNTIME_LOCK
    lock.write_text(f"never-downloaded==1.0 \\\n    {HASH}\n", encoding="utf-8")
    monkeypatch.delenv("PORTAL_REQUIRE_INTEGRATION", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_wheelhouse(lock)
    assert "never-downloaded==1.0" in str(skipped.value) and MAKE_TARGET in str(skipped.value)
    monkeypatch.setenv("PORTAL_REQUIRE_INTEGRATION", "1")
    with pytest.raises(pytest.fail.Exception, match="make wheelhouse"):
        require_wheelhouse(lock)
