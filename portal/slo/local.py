"""``portal serve`` without ``PORTAL_PROMETHEUS_URL``: a Prometheus of its own on loopback.

When the ``prometheus`` binary is found, it is started with its data in
``<data dir>/prometheus/``, scraping the portal's ``/metrics`` (job ``portal``, the job
the portal's own SLOs select), itself (job ``prometheus``) and the services listed in
``PORTAL_PROMETHEUS_SCRAPE_TARGETS``, with the rules generated from every SLO spec the
portal knows. The rules are regenerated on start and, while serving, whenever the
specs change (a merged service brings its ``slo.yaml``); Prometheus then reloads them.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from portal.config import Settings
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_bootstrap import bootstrap_gitops
from portal.integrations.prometheus_local import (
    LOOPBACK,
    LocalPrometheus,
    LocalPrometheusError,
    ScrapeTarget,
    find_prometheus,
    parse_targets,
)
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.store import SLOIndex, build_slo_index

RULES_CHECK_SECONDS = 60.0
logger = logging.getLogger(__name__)


def portal_target(host: str, port: int) -> str:
    """Return the address Prometheus scrapes the portal at (loopback for wildcard hosts)."""
    if host in ("0.0.0.0", "::", "", "localhost"):  # noqa: S104 (compared, not bound)
        host = LOOPBACK
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def generated_rules(
    settings: Settings, gitops: Callable[[], GitOpsRepo] | None = None
) -> tuple[dict[str, str], SLOIndex]:
    """Generate the rule files of every SLO the portal knows (bad specs are skipped)."""
    slo_index = build_slo_index(
        settings.slo_paths,
        gitops=gitops or functools.partial(bootstrap_gitops, settings),
        engine=None,
    )
    try:
        return slo_index.rule_files(), slo_index
    except InvalidSpecError as error:  # two services writing one file name
        logger.warning("SLO rules not generated: %s", error)
        return {}, slo_index


def _watch_rules(
    prometheus: LocalPrometheus,
    settings: Settings,
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    gitops = functools.cache(functools.partial(bootstrap_gitops, settings))
    while not stop.wait(RULES_CHECK_SECONDS):
        try:
            rules, _ = generated_rules(settings, gitops)
            if rules != prometheus.rules:
                prometheus.reload(rules)
                say(f"Local Prometheus: reloaded the rules of {len(rules)} service(s)")
        except (LocalPrometheusError, OSError) as error:
            say(f"Local Prometheus: rules not reloaded ({error})")


@contextmanager
def local_prometheus(
    settings: Settings,
    *,
    host: str,
    port: int,
    say: Callable[[str], None] = logger.info,
    interval: str = "15s",
) -> Iterator[Settings]:
    """Yield the settings to serve with: pointing at a local Prometheus when one started.

    ``interval`` is the scrape and rule evaluation interval.

    Nothing is started when ``PORTAL_PROMETHEUS_URL`` is set or no ``prometheus`` is found;
    a Prometheus that fails to start is reported and the portal serves without it.
    """
    if settings.prometheus_url:
        yield settings
        return
    if find_prometheus(settings.prometheus_path) is None:
        say(
            "No Prometheus: PORTAL_PROMETHEUS_URL is unset and no prometheus binary was found "
            "(Debian/Ubuntu: apt-get install prometheus); the SLO pages will say so."
        )
        yield settings
        return
    rules, slo_index = generated_rules(settings)
    for problem in slo_index.problems:
        say(f"SLO spec problem: {problem}")
    prometheus = LocalPrometheus(
        folder=settings.data_dir / "prometheus",
        scrape=[
            ScrapeTarget("portal", (portal_target(host, port),)),
            *parse_targets(settings.prometheus_scrape_targets),
        ],
        rules=rules,
        executable=settings.prometheus_path,
        port=settings.prometheus_port,
        scrape_interval=interval,
        evaluation_interval=interval,
    )
    try:
        url = prometheus.start()
    except LocalPrometheusError as error:
        say(f"Local Prometheus did not start ({error}); serving without it.")
        yield settings
        return
    say(
        f"Local Prometheus at {url} (data in {prometheus.folder}): scraping the portal, "
        f"rules for {len(slo_index.entries)} SLO(s) of {len(rules)} service(s)"
    )
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch_rules, args=(prometheus, settings, stop, say), daemon=True
    )
    watcher.start()
    try:
        yield settings.model_copy(update={"prometheus_url": url})
    finally:
        stop.set()
        prometheus.stop()
        say("Local Prometheus stopped.")
