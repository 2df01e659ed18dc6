"""A Prometheus of our own on loopback: for ``make run``, the integration tests and benchmarks.

``LocalPrometheus`` writes a configuration (scrape targets, rule files) into a folder,
starts the ``prometheus`` binary listening on 127.0.0.1 with its data in that folder,
waits until ``/-/ready`` answers and stops it (SIGTERM, then SIGKILL) on exit. One left
running by a portal that was killed is stopped by the next start on the same folder. The
portal's settings say which targets to scrape; the rules are whatever the caller passes
(the portal passes the rules generated from the SLO specs it knows). Starting, stopping
and the orphans are :mod:`portal.integrations.local_server`'s, shared with the local MLflow.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from portal.integrations import local_server
from portal.integrations.local_server import LOOPBACK as LOOPBACK
from portal.integrations.local_server import STOP_TIMEOUT_SECONDS as STOP_TIMEOUT_SECONDS
from portal.integrations.local_server import LocalServer, LocalServerError, ServerProcess
from portal.integrations.processes import process_alive as process_alive
from portal.integrations.processes import scrubbed_env

START_TIMEOUT_SECONDS = 30.0


class LocalPrometheusError(LocalServerError):
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
    return local_server.free_port(preferred, error=LocalPrometheusError)


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
class LocalPrometheus(LocalServer):
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
    server: ServerProcess = field(init=False, repr=False, compare=False)
    name = "prometheus"
    health_path = "/-/ready"
    error = LocalPrometheusError
    start_timeout = START_TIMEOUT_SECONDS

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
        # An orphan would hold the TSDB lock, so a new one could not start.
        self.server.stop_orphan(f"--storage.tsdb.path={self.folder / 'data'}")
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
        # The portal's settings (a GitOps token) stay out of its environment.
        self.server.start(command, port=self.port, env=scrubbed_env())
        return self.url

    def reload(self, rules: Mapping[str, str]) -> None:
        """Replace the rule files and ask the running Prometheus to reload them."""
        self.rules = dict(rules)
        self.write_config()
        if self.running:
            status = self.server.request("/-/reload", method="POST")
            if status != 200:
                raise LocalPrometheusError(f"prometheus refused to reload (HTTP {status})")
