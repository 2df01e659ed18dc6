"""The measured days behind the cost pages, refreshed in the background, one load at a time.

``MeasuredRefresh`` keeps the last ``Snapshot`` of measured days and replaces it in a
thread (``cost-refresh``, one at a time) when it is ``measured_seconds`` old, when a UTC
day starts, or when a longer window needs more history; a request never waits for a
source: it gets the last snapshot, or, before one covers its window, a stand-in whose
sources each say "measured figures are loading (started HH:MM:SS UTC)" (the pages then
show the estimate). Without sources there is nothing to wait for and the caller loads.

Each source is asked through its ``SourceDays``: a complete UTC day does not change once
measured, so the days older than yesterday are kept and a refresh asks only for the days
not held. The first load reads the whole history; the next ones read yesterday (asked
again for samples that came late) and today. A source that fails keeps its last answer,
and ``notes()`` says which, since when and why; a refresh that raises keeps the previous
snapshot, with its error and time among the notes. ``stop()`` (the app's shutdown) ends
the refreshes; ``refresh_now()`` loads in the caller's thread (tests, scripts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from portal.cost.measured import Measured, SourceStatus, check_day
from portal.cost.model import Prices
from portal.integrations.cost_metrics import CostSource, CostSourceError, ResourceDay
from portal.integrations.processes import redact_credentials

logger = logging.getLogger(__name__)

MEASURED_SECONDS = 300.0
MIN_HISTORY_DAYS = 60  # the default 30-day window and the one before it
SETTLED_DAYS = 2  # kept from this age: yesterday is asked again, for samples that came late
STOP_SECONDS = 10.0  # how long the app's shutdown waits for a refresh in flight


def clock_time(moment: datetime) -> str:
    """Show ``moment`` as the pages give a refresh's time: ``HH:MM:SS UTC``."""
    return f"{moment.astimezone(UTC):%H:%M:%S} UTC"


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days, each ``(first, last)``."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


class SourceDays:
    """One source as the refresh asks it: settled days kept, the other days asked again.

    A ``CostSource`` itself (``gather`` asks it in the source's place). A range is answered
    from the days held plus one call per run of days not held; the days of an answer that
    are ``SETTLED_DAYS`` old or more are then held, empty ones too (a day nothing ran is
    not asked again). Days outside the range asked, or nonsense, are never held. When the
    source fails, its last answer stands in, with ``failed`` saying when and why. Only the
    refresh (one at a time) calls it.
    """

    def __init__(self, source: CostSource, clock: Callable[[], datetime]) -> None:
        """Ask ``source``; ``clock`` dates the answers and failures."""
        self.source = source
        self.name = source.name
        self.url = source.url
        self._clock = clock
        self._held: dict[date, list[ResourceDay]] = {}
        self._answer: list[ResourceDay] = []
        self._answered: tuple[date, datetime] | None = None  # its first day, when
        self.failed: tuple[datetime, str] | None = None
        self.covers_from: date | None = None  # the first day the last call answered for

    def resource_days(self, first: date, last: date) -> list[ResourceDay]:
        """Return ``first``..``last``: days held, asked, or the last answer if asking fails."""
        self.covers_from = None
        try:
            answer = self._fetch(first, last)
        except (CostSourceError, OSError, ValueError) as error:
            self.failed = (self._clock(), redact_credentials(str(error) or repr(error)))
            if self._answered is None:
                raise
            self.covers_from = max(first, self._answered[0])
            return [day for day in self._answer if first <= day.day <= last]
        self._answer, self._answered, self.failed = answer, (first, self._clock()), None
        self.covers_from = first
        return answer

    def stale_note(self) -> str | None:
        """Why this source's figures are an older answer, with both times; None if fresh."""
        if self.failed is None or self._answered is None or self.covers_from is None:
            return None
        when, error = self.failed
        return (
            f"{self.name} ({redact_credentials(self.url)}): the refresh at {clock_time(when)}"
            f" failed, so its figures of {clock_time(self._answered[1])} are shown: {error}"
        )

    def _fetch(self, first: date, last: date) -> list[ResourceDay]:
        settled = last - timedelta(days=SETTLED_DAYS)
        span = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        recent: list[ResourceDay] = []
        for start, end in _runs([day for day in span if day not in self._held]):
            days = self.source.resource_days(start, end)
            for day in days:
                check_day(day, start, end)  # raises before anything of the run is held
            for n in range((min(end, settled) - start).days + 1):
                self._held[start + timedelta(days=n)] = []
            for day in days:
                (self._held[day.day] if day.day <= settled else recent).append(day)
        for old in [day for day in self._held if day < first]:
            del self._held[old]
        return [day for when in span for day in self._held.get(when, ())] + recent


@dataclass(frozen=True)
class Snapshot:
    """One refresh's measured days, the price sheets that priced them, their owners."""

    today: date
    loaded_at: datetime
    measured: Measured  # ``first``: the first day every answering source covers
    sheets: Mapping[str, Prices] = field(default_factory=dict)
    sheets_error: str | None = None
    owners: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # sources shown with an older answer: why, since when


# Loads the snapshot of ``first``..``today`` from the sources' held days: (today, first, days).
Loader = Callable[[date, date, list[SourceDays]], Snapshot]


class MeasuredRefresh:
    """The last snapshot of measured days and the one refresh at a time that replaces it."""

    def __init__(
        self,
        load: Loader,
        sources: Callable[[], Sequence[CostSource]],
        clock: Callable[[], datetime],
        measured_seconds: float = MEASURED_SECONDS,
    ) -> None:
        """Refresh with ``load`` over what ``sources`` returns (read at each refresh)."""
        self._load = load
        self._sources = sources
        self._clock = clock
        self.measured_seconds = measured_seconds
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a refresh ends
        self._snapshot: Snapshot | None = None
        self._days: dict[int, SourceDays] = {}  # by id() of the source
        self._history_days = MIN_HISTORY_DAYS  # grows to the longest window asked
        self._attempt: tuple[datetime, date, date] | None = None  # ended at, today, first
        self._failure: tuple[datetime, str] | None = None  # the last refresh that raised
        self._loading_since: datetime | None = None
        self._thread: threading.Thread | None = None
        self._generation = 0  # a refresh begun before ``clear`` is not kept
        self._stopped = False
        self._pending_memo: tuple[object, Snapshot] | None = None

    def latest(self) -> Snapshot | None:
        """Return the last snapshot, whatever it covers; None before the first."""
        with self._lock:
            return self._snapshot

    def current(self, today: date, needed: date) -> Snapshot:
        """Return the snapshot covering ``needed``..``today``, or a stand-in saying why not.

        Starts a refresh when the snapshot is due and none runs; never waits for a source.
        """
        with self._lock:
            self._history_days = max(self._history_days, (today - needed).days)
            run_here = self._due(today, needed) and self._start()
        if run_here:
            self._refresh()
        with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.measured.first <= needed:
                return snapshot
            return self._pending(today, needed)

    def clear(self) -> None:
        """Forget the snapshot and the held days: the next read loads everything again."""
        with self._lock:
            self._generation += 1
            self._snapshot = self._attempt = self._failure = None
            self._days.clear()

    def expire(self) -> None:
        """Make the snapshot due (as when it is old); the held days are kept."""
        with self._lock:
            self._attempt = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until no refresh runs; return False when ``timeout`` seconds passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._loading_since is None, timeout)

    def refresh_now(self, today: date, needed: date) -> None:
        """Refresh in this thread, covering ``needed``; a refresh running is waited for first."""
        with self._idle:
            self._idle.wait_for(lambda: self._loading_since is None)
            if self._stopped:
                return
            self._history_days = max(self._history_days, (today - needed).days)
            self._loading_since = self._clock()
        self._refresh()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Start no refresh any more; wait up to ``timeout`` for the one in flight."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def notes(self) -> tuple[str, ...]:
        """Say why the measured figures shown are older than the last refresh (pages)."""
        with self._lock:
            snapshot, failure = self._snapshot, self._failure
        if snapshot is None:
            return ()  # the stand-in's sources say it
        notes = list(snapshot.notes)
        if failure is not None:
            notes.append(
                f"measured figures: the refresh at {clock_time(failure[0])} failed, so those"
                f" of {clock_time(snapshot.loaded_at)} are shown: {failure[1]}"
            )
        return tuple(notes)

    def _due(self, today: date, needed: date) -> bool:
        if self._attempt is None:
            return True
        ended, day, first = self._attempt
        age = (self._clock() - ended).total_seconds()
        return day != today or first > needed or age >= self.measured_seconds

    def _start(self) -> bool:
        """Start a refresh (lock held) unless one runs; True: the caller runs it itself."""
        if self._stopped or self._loading_since is not None:
            return False
        self._loading_since = self._clock()
        if not self._sources():
            return True  # only the price sheets to read, from the local clone
        self._thread = threading.Thread(target=self._refresh, name="cost-refresh", daemon=True)
        self._thread.start()
        return False

    def _refresh(self) -> None:
        """Load snapshots until one covers the longest window asked."""
        try:
            while True:
                with self._lock:
                    generation, now = self._generation, self._clock()
                    today = now.astimezone(UTC).date()
                    first = today - timedelta(days=self._history_days)
                    days = self._source_days()
                try:
                    snapshot = self._load(today, first, days)
                except Exception as error:  # anything: the thread reports it, pages stay up
                    logger.exception("the measured cost refresh failed")
                    with self._lock:
                        if generation == self._generation:
                            message = redact_credentials(str(error) or repr(error))
                            self._failure = (self._clock(), message)
                            self._attempt = (self._clock(), today, first)
                    return
                with self._lock:
                    if self._stopped:
                        return
                    if generation == self._generation:  # else cleared meanwhile: again
                        self._snapshot, self._failure = snapshot, None
                        self._attempt = (snapshot.loaded_at, today, first)
                        if today - timedelta(days=self._history_days) >= first:
                            return
        finally:
            with self._lock:
                self._loading_since = self._thread = None
                self._idle.notify_all()

    def _source_days(self) -> list[SourceDays]:
        """Each current source's held days (lock held); a new source starts empty."""
        held = {}
        for source in self._sources():
            found = self._days.get(id(source))
            if found is None or found.source is not source:
                found = SourceDays(source, self._clock)
            held[id(source)] = found
        self._days = held
        return list(held.values())

    def _pending(self, today: date, needed: date) -> Snapshot:
        """Stand in for a snapshot covering ``needed`` (lock held): each source says why."""
        statuses = []
        for source in self._sources():
            held = self._days.get(id(source))
            failed = self._failure or (held.failed if held and held.source is source else None)
            if self._loading_since is not None:
                reason = f"measured figures are loading (started {clock_time(self._loading_since)})"
            elif failed is not None:
                reason = f"the refresh at {clock_time(failed[0])} failed: {failed[1]}"
            else:
                reason = "measured figures are not loaded yet"
            statuses.append(SourceStatus(source.name, source.url, error=reason))
        key = (today, needed, tuple(statuses))
        if self._pending_memo is None or self._pending_memo[0] != key:  # same object: cached
            measured = Measured(needed, today, key[2])
            self._pending_memo = (key, Snapshot(today, self._clock(), measured))
        return self._pending_memo[1]
