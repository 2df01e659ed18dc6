"""The background workers of the scaffold pipeline: a render stage and a check stage.

A change is rendered, committed and pushed by the render stage (status ``rendering``),
then handed to the check stage (status ``checking``), whose workers check several changes
at once. Each stage claims its changes in the database (:func:`claim_next`), so replicas
share the work and a render never waits behind another change's checks.

A worker id is ``host:pid``. On start a replica releases the claims whose worker is gone
(:func:`claim_abandoned`), never the live claims of another replica.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session

from portal.changes.claims import claim_next
from portal.changes.models import ChangeStatus
from portal.integrations.processes import process_alive
from portal.scaffold.jobs import ScaffoldContext, check_change, render_change

logger = logging.getLogger(__name__)

# Renders mostly wait for the Copier worker process and git; a second thread overlaps one
# change's push with the next one's render (the Copier pool has two processes).
RENDER_WORKERS = 2
POLL_SECONDS = 0.2
# The check stage starts no new change while the render stage is busy (renders are what a
# person waits for; checks compete with them for the cores), but never for longer than this.
GIVE_WAY_SECONDS = 10.0
GIVE_WAY_POLL_SECONDS = 0.01


def process_started(pid: int) -> datetime | None:
    """Return when process ``pid`` started (Linux ``/proc``); None when unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
        boot = next(
            line
            for line in Path("/proc/stat").read_text(encoding="ascii").splitlines()
            if line.startswith("btime ")
        )
        # Field 22 of stat, counted after the command name in brackets (which may hold spaces).
        ticks = int(stat.rpartition(")")[2].split()[19])
        started = int(boot.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return datetime.fromtimestamp(started, UTC)


def claim_abandoned(worker_id: str, claimed_at: datetime, host: str | None = None) -> bool:
    """Tell whether a claim's worker (``host:pid``) is certainly gone.

    Gone means: on this host, and its process is not running or started after the claim
    (the pid was reused, e.g. pid 1 of a restarted container). A claim from another host,
    or in an unknown form, is never called abandoned here: it is released when it goes
    stale (``STALE_CLAIM``).
    """
    claim_host, _, pid_text = worker_id.rpartition(":")
    if claim_host != (host or socket.gethostname()) or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if not process_alive(pid):
        return True
    started = process_started(pid)
    claimed = claimed_at if claimed_at.tzinfo else claimed_at.replace(tzinfo=UTC)
    # /proc counts in clock ticks: a process that made the claim started before it.
    return started is not None and started.timestamp() > claimed.timestamp() + 0.05


class StageWorkers:
    """``count`` threads that claim changes of one stage and run its step on each."""

    def __init__(
        self,
        name: str,
        ctx: ScaffoldContext,
        statuses: Collection[ChangeStatus],
        step: Callable[[ScaffoldContext, str], ChangeStatus],
        *,
        count: int = 1,
        warm_up: Callable[[], None] | None = None,
        done: Callable[[], None] | None = None,
        give_way_to: StageWorkers | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """Run ``step`` on claimed changes; ``done`` after each (e.g. wake the next stage).

        ``warm_up`` runs first, in one thread, so starting the app never waits for it.
        While ``give_way_to`` is busy, no new change is started here (for up to
        ``GIVE_WAY_SECONDS``; a change already started goes on).
        """
        self.name = name
        self.ctx = ctx
        self.statuses = tuple(statuses)
        self.step = step
        self.done = done
        self.give_way_to = give_way_to
        self.poll_seconds = poll_seconds
        self._busy = 0
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in range(count)]
        self._threads = [
            threading.Thread(
                target=self._loop,
                args=(wake, warm_up if index == 0 else None),
                name=f"{name}-{index}",
                daemon=True,
            )
            for index, wake in enumerate(self._wakes)
        ]

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """Look for work now instead of at the next poll."""
        for wake in self._wakes:
            wake.set()

    def stop(self, timeout: float = 30) -> None:
        """Ask the threads to finish their current change and wait for them."""
        self.request_stop()
        self.join(timeout)

    def request_stop(self) -> None:
        """Ask the threads to stop after their current change, without waiting."""
        self._stop.set()
        self.wake()

    def join(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds in all for the threads to end."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))

    def busy(self) -> bool:
        """Tell whether a thread is claiming a change or running the step on one."""
        with self._busy_lock:
            return self._busy > 0

    def run_one(self) -> bool:
        """Claim one change of this stage and run the step; False when there was none."""
        with self._busy_lock:
            self._busy += 1
        try:
            with Session(self.ctx.engine) as session:
                change = claim_next(session, self.ctx.worker_id, self.statuses)
            if change is None:
                return False
            self.step(self.ctx, change.id)
            if self.done is not None:
                # Still busy: the next stage, woken here, gives way while this one
                # goes on to its next change.
                self.done()
            return True
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _give_way(self) -> None:
        if self.give_way_to is None:
            return
        deadline = time.monotonic() + GIVE_WAY_SECONDS
        while self.give_way_to.busy() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(GIVE_WAY_POLL_SECONDS)

    def _loop(self, wake: threading.Event, warm_up: Callable[[], None] | None) -> None:
        if warm_up is not None:
            try:
                warm_up()
            except Exception:  # the first change then does the work itself
                logger.exception("%s warm-up", self.name)
        while not self._stop.is_set():
            try:
                self._give_way()
                if not self.run_one():
                    wake.wait(self.poll_seconds)
                    wake.clear()
            except Exception:  # keep the worker alive; the change itself records failures
                logger.exception("%s loop", self.name)
                time.sleep(self.poll_seconds)


class PipelineWorkers:
    """The render stage and the check stage of one app (or replica)."""

    def __init__(
        self,
        ctx: ScaffoldContext,
        *,
        check_workers: int,
        render_workers: int = RENDER_WORKERS,
        warm_up_render: Callable[[], None] | None = None,
        warm_up_checks: Callable[[], None] | None = None,
    ) -> None:
        """Build both stages; ``check_workers`` changes are checked at once."""
        self.render = StageWorkers(
            "scaffold-render",
            ctx,
            [ChangeStatus.RENDERING],
            render_change,
            count=render_workers,
            warm_up=warm_up_render,
            done=self._wake_checks,
        )
        self.checks = StageWorkers(
            "scaffold-check",
            ctx,
            [ChangeStatus.CHECKING],
            check_change,
            count=check_workers,
            warm_up=warm_up_checks,
            give_way_to=self.render,
        )

    def _wake_checks(self) -> None:
        self.checks.wake()

    def start(self) -> None:
        """Start both stages."""
        self.checks.start()
        self.render.start()

    def wake(self) -> None:
        """Tell the render stage a change is waiting."""
        self.render.wake()

    def stop(self, timeout: float = 30) -> None:
        """Stop taking changes; wait for the ones in progress to finish."""
        self.render.request_stop()
        self.checks.request_stop()
        deadline = time.monotonic() + timeout
        self.render.join(timeout)
        self.checks.join(max(0.0, deadline - time.monotonic()))


def check_worker_count(configured: int | None) -> int:
    """Return how many changes the check stage checks at once (unset: one per core)."""
    return configured or os.cpu_count() or 1
