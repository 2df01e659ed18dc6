"""Scratch folders of renders: a killed portal's are removed on the next start, live ones kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine

from portal.config import Settings
from portal.integrations.processes import process_alive
from portal.scaffold.runtime import ScaffoldRuntime
from portal.scaffold.scratch import remove_abandoned, scratch_folder
from tests.conftest import REPO

HOLDER = """\
import sys, time
from pathlib import Path
sys.path.insert(0, {repo!r})
from portal.scaffold.scratch import scratch_folder
with scratch_folder(Path({parent!r})) as folder:
    (folder / "render.yaml").write_text("half a render")
    print(folder, flush=True)
    time.sleep(300)
"""


def killed_holder(parent: Path) -> Path:
    """A process that made a scratch folder, then was killed with SIGKILL: the folder stays."""
    code = HOLDER.format(repo=str(REPO), parent=str(parent))
    with subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout is not None
            folder = Path(holder.stdout.readline().strip())
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
    assert (folder / "render.yaml").is_file() and not process_alive(holder.pid)
    return folder


def test_scratch_folders_carry_their_owner_and_are_removed_after_use(tmp_path: Path) -> None:
    with scratch_folder(tmp_path) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(f"scaffold-{os.getpid()}-")
    assert not folder.exists()


def test_start_removes_the_folders_of_dead_portals_only(
    tmp_path: Path, settings: Settings, engine: Engine
) -> None:
    scratch = tmp_path / "shm"
    scratch.mkdir()
    abandoned = killed_holder(scratch)
    live = scratch / f"scaffold-{os.getpid()}-live"
    unowned = [scratch / "scaffold-k2j4h5g6", scratch / "checkov-123-x", scratch / "notes"]
    for folder in (live, *unowned):
        folder.mkdir()
        (folder / "file").write_text("kept")
    dead_file = scratch / abandoned.name.replace("-", "-file-", 1)  # not a folder: not ours
    dead_file.write_text("kept")

    runtime = ScaffoldRuntime(engine, settings.model_copy(update={"scratch_dir": scratch}))
    runtime.start()
    try:
        assert not abandoned.exists()
        assert all((folder / "file").is_file() for folder in (live, *unowned))
        assert dead_file.is_file()
    finally:
        runtime.stop()


def test_remove_abandoned_keeps_a_folder_while_its_owner_runs(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        owned = tmp_path / f"scaffold-{sleeper.pid}-busy"
        owned.mkdir()
        assert remove_abandoned(tmp_path) == []
        sleeper.kill()
        sleeper.wait(timeout=10)
        deadline = time.monotonic() + 5
        while process_alive(sleeper.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert remove_abandoned(tmp_path) == [owned] and not owned.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()
