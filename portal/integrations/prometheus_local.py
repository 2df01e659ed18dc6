"""A Prometheus of our own on loopback: for ``make run``, the integration tests and benchmarks.

``LocalPrometheus`` writes a configuration (scrape targets, rule files) into a folder,
starts the ``prometheus`` binary listening on 127.0.0.1 with its data in that folder,
waits until ``/-/ready`` answers and stops it (SIGTERM, then SIGKILL) on exit. One left
running by a portal that was killed is stopped by the next start on the same folder. The
portal's settings say which targets to scrape; the rules are whatever the caller passes
(the portal passes the rules generated from the SLO specs it knows).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from portal.integrations.processes import process_alive as process_alive
from portal.integrations.processes import scrubbed_env

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
LOOPBACK = "127.0.0.1"


class LocalPrometheusError(RuntimeError):
    """The local Prometheus could not be started."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One scrape job: a job name, ``host:port`` addresses and the metrics path."""

    job: str
    targets: tuple[str, ...]
    metrics_path: str = "/metrics"


def parse_targets(entries: Sequence[str]) -> list[ScrapeTarget]:
    """Read ``job=host:port[/path]`` entries (the ``PORTAL_PROMETHEUS_SCRAPE_TARGETS`` form)."""
    jobs: dict[tuple[str, str], list[str]] = {}
    for entry in entries:
        job, separator, address = entry.partition("=")
        if not separator or not job.strip() or not address.strip():
            raise ValueError(f"scrape target {entry!r}: expected job=host:port[/path]")
        host_port, slash, path = address.strip().partition("/")
        jobs.setdefault((job.strip(), "/" + path if slash else "/metrics"), []).append(host_port)
    return [ScrapeTarget(job, tuple(hosts), path) for (job, path), hosts in jobs.items()]


def find_prometheus(configured: Path | None = None) -> Path | None:
    """Return the configured executable when it exists, else ``prometheus`` on PATH."""
    if configured is not None:
        executable = configured.absolute()  # it runs in its own folder
        return executable if executable.is_file() and os.access(executable, os.X_OK) else None
    found = shutil.which("prometheus")
    return Path(found).absolute() if found else None


def free_port(preferred: int = 0) -> int:
    """Return ``preferred`` when it can be bound on loopback, else a port the OS picks."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((LOOPBACK, candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise LocalPrometheusError("no free port on loopback")


def config_text(
    scrape: Sequence[ScrapeTarget],
    rule_files: Sequence[str],
    *,
    scrape_interval: str,
    evaluation_interval: str,
) -> str:
    """Write prometheus.yml; JSON is YAML, so every value is quoted safely."""
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "evaluation_interval": evaluation_interval,
            "scrape_timeout": scrape_interval,
        },
        "rule_files": list(rule_files),
        "scrape_configs": [
            {
                "job_name": target.job,
                "metrics_path": target.metrics_path,
                "static_configs": [{"targets": list(target.targets)}],
            }
            for target in scrape
        ],
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass
class LocalPrometheus:
    """A ``prometheus`` process on loopback with its config and data under ``folder``.

    ``rules`` maps a file name to rule file text (written to ``folder/rules/``); every
    start writes the configuration and rules afresh. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    folder: Path
    scrape: Sequence[ScrapeTarget] = ()
    rules: Mapping[str, str] = field(default_factory=dict)
    executable: Path | None = None
    port: int = 0
    scrape_interval: str = "15s"
    evaluation_interval: str = "15s"
    retention: str = "15d"
    scrape_self: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """Anchor the folder: Prometheus runs inside it, where a relative path breaks."""
        self.folder = self.folder.absolute()

    @property
    def url(self) -> str:
        """The base URL (valid once started)."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Prometheus' own output (stdout and stderr)."""
        return self.folder / "prometheus.log"

    @property
    def pid_path(self) -> Path:
        """The process id of the running Prometheus, removed when it is stopped."""
        return self.folder / "prometheus.pid"

    def _stop_orphan(self) -> None:
        """Stop a Prometheus a previous portal left on this folder (it was SIGKILLed).

        The orphan would hold the TSDB lock, so a new one could not start. Only a process
        whose command line names this folder's data directory is stopped.
        """
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return  # no pid file, or that process is gone
        if f"--storage.tsdb.path={self.folder / 'data'}".encode() not in cmdline:
            return  # the pid was reused by another program
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def write_config(self) -> Path:
        """Write ``prometheus.yml`` and the rule files (stale rule files are removed)."""
        rules_dir = self.folder / "rules"
        rules_dir.mkdir(parents=True, exist_ok=True)
        for stale in rules_dir.glob("*.yaml"):
            if stale.name not in self.rules:
                stale.unlink()
        for name, text in self.rules.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"rule file name {name!r} must be a plain file name")
            (rules_dir / name).write_text(text, encoding="utf-8")
        config = self.folder / "prometheus.yml"
        own = [ScrapeTarget("prometheus", (f"{LOOPBACK}:{self.port}",))] if self.scrape_self else []
        text = config_text(
            [*own, *self.scrape],
            [f"rules/{name}" for name in sorted(self.rules)],
            scrape_interval=self.scrape_interval,
            evaluation_interval=self.evaluation_interval,
        )
        config.write_text(text, encoding="utf-8")
        return config

    def start(self) -> str:
        """Start Prometheus and wait until it is ready; return its URL."""
        executable = find_prometheus(self.executable)
        if executable is None:
            raise LocalPrometheusError(
                "prometheus not found (Debian/Ubuntu: apt-get install prometheus)"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_orphan()
        self.port = free_port(self.port)
        config = self.write_config()
        command = [
            str(executable),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--web.enable-lifecycle",
            f"--web.console.templates={self.folder / 'consoles'}",
            f"--web.console.libraries={self.folder / 'console_libraries'}",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.folder,
                env=scrubbed_env(),  # the portal's settings (a GitOps token) stay out
                start_new_session=True,  # Ctrl-C in a terminal goes to the portal only
            )
        try:
            self.pid_path.write_text(f"{self._process.pid}\n")
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _get(self, path: str, method: str = "GET") -> int:
        connection = http.client.HTTPConnection(LOOPBACK, self.port, timeout=2)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise LocalPrometheusError(
                    f"prometheus exited with {self._process.returncode}: {self._log_tail()}"
                )
            try:
                if self._get("/-/ready") == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise LocalPrometheusError(
                    f"prometheus was not ready within {START_TIMEOUT_SECONDS:g} s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:])

    def reload(self, rules: Mapping[str, str]) -> None:
        """Replace the rule files and ask the running Prometheus to reload them."""
        self.rules = dict(rules)
        self.write_config()
        if self._process is not None and self._process.poll() is None:
            status = self._get("/-/reload", method="POST")
            if status != 200:
                raise LocalPrometheusError(f"prometheus refused to reload (HTTP {status})")

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop Prometheus: SIGTERM (it flushes its data), SIGKILL after a grace period."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
        # Only once it is gone: a stop cut short (a second Ctrl-C) leaves the pid file to
        # the next start, which stops the process.
        self.pid_path.unlink(missing_ok=True)

    def __enter__(self) -> LocalPrometheus:
        """Start on entering the block."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop on leaving the block."""
        self.stop()
