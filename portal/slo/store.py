"""Which SLOs exist: the platform's specs (``PORTAL_SLO_PATHS``) and every service's ``slo.yaml``.

The SLO index is built from the spec files, resolved with the same code that generates
the rules, so what the pages list is exactly what Prometheus was given. A spec file that
does not resolve is reported as a problem and the others are still listed. The owner of
an SLO is its ``team`` or ``owner`` label, else the owner of the catalog Component named
like the service. Building it reads git and the database, so it is cached briefly.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from sqlalchemy import Engine
from sqlmodel import Session

from portal.catalog.refs import RefError, parse_ref
from portal.catalog.store import entities_by_ref
from portal.integrations.git import GitError
from portal.integrations.gitops import GitOpsRepo
from portal.slo.compiler.errors import InvalidSpecError
from portal.slo.compiler.generate import (
    SPEC_SUFFIXES,
    GenerateOptions,
    render_outputs,
    resolve_sources,
)
from portal.slo.compiler.resolve import ResolvedSLO

SERVICE_SPEC = re.compile(r"^services/(?P<service>[^/]+)/slo\.yaml$")
TEAM_LABELS = ("team", "owner")


@dataclass(frozen=True)
class SpecFile:
    """One spec file: where it comes from, its text, and where to read it on the web."""

    source: str
    text: str
    origin: Literal["local", "gitops"]
    web_url: str | None = None
    repository: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class IndexedSLO:
    """One SLO the portal knows, with what the pages show about it."""

    slo: ResolvedSLO
    spec: SpecFile
    owner_ref: str | None = None

    @property
    def sloth_id(self) -> str:
        """Sloth's id (``<service>-<slo>``), the ``sloth_id`` label of every series."""
        return self.slo.id

    @property
    def service(self) -> str:
        """The service the SLO belongs to."""
        return self.slo.service

    @property
    def name(self) -> str:
        """The SLO's name within its service."""
        return self.slo.name

    @property
    def objective(self) -> float:
        """The objective in percent (99.9)."""
        return self.slo.objective

    @property
    def period(self) -> str:
        """The SLO period as Prometheus prints it (``30d``, ``4w``)."""
        return self.slo.windows.period

    @property
    def team(self) -> str | None:
        """The owning team's name (``platform-team``), or None when nobody owns it."""
        return team_name(self.owner_ref) if self.owner_ref else None


@dataclass(frozen=True)
class SLOIndex:
    """Every SLO found, sorted by service and name, and every problem met on the way."""

    entries: tuple[IndexedSLO, ...] = ()
    problems: tuple[str, ...] = ()
    _by_id: dict[str, IndexedSLO] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Index the entries by sloth id."""
        self._by_id.update((entry.sloth_id, entry) for entry in self.entries)

    def get(self, sloth_id: str) -> IndexedSLO | None:
        """Return the SLO with this sloth id, if known."""
        return self._by_id.get(sloth_id)

    def for_service(self, service: str) -> list[IndexedSLO]:
        """Return the SLOs of one service."""
        return [entry for entry in self.entries if entry.service == service]

    def rule_files(self) -> dict[str, str]:
        """Generate the rule files of every SLO (one per service): name -> text."""
        outputs = render_outputs([entry.slo for entry in self.entries], GenerateOptions())
        return {output.name: output.text for output in outputs}


def team_name(owner_ref: str) -> str:
    """Return the plain group name of an owner given as ``team`` or ``group:default/team``."""
    try:
        ref = parse_ref(owner_ref, default_kind="group")
    except RefError:
        return owner_ref
    return ref.name if ref.namespace == "default" else f"{ref.namespace}/{ref.name}"


def web_url(repository: str, branch: str, path: str) -> str | None:
    """Link to a file on the forge hosting the repository (GitHub/GitLab/Gitea style).

    ``None`` for repositories without a web view (a local bare repository, ``file://``).
    """
    scp = re.match(r"^[\w.-]+@(?P<host>[\w.-]+):(?P<path>[^/].*)$", repository)
    if scp:
        base = f"https://{scp['host']}/{scp['path']}"
    else:
        parts = urlsplit(repository)
        if parts.scheme not in ("http", "https", "ssh") or not parts.hostname:
            return None
        scheme = "https" if parts.scheme == "ssh" else parts.scheme
        port = f":{parts.port}" if parts.port and parts.scheme != "ssh" else ""
        base = f"{scheme}://{parts.hostname}{port}{parts.path}"
    base = base.rstrip("/").removesuffix(".git")
    return f"{base}/blob/{branch}/{path}"


def local_spec_files(paths: Sequence[str | Path]) -> tuple[list[SpecFile], list[str]]:
    """Read the platform's spec files and folders; unreadable ones become problems."""
    files: list[SpecFile] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
        elif path.is_file():
            found = [path]
        else:
            problems.append(f"{path}: no such SLO spec file or folder (PORTAL_SLO_PATHS)")
            continue
        for file in found:
            try:
                files.append(SpecFile(str(file), file.read_text(encoding="utf-8"), "local"))
            except (OSError, UnicodeDecodeError) as error:
                problems.append(f"{file}: cannot be read: {error}")
    return files, problems


def gitops_spec_files(repo: GitOpsRepo, ref: str | None = None) -> list[SpecFile]:
    """Read every ``services/<name>/slo.yaml`` at ``ref`` (default: the watched branch)."""
    ref = ref or repo.main
    files = []
    for path in repo.list_files(ref, "services"):
        if SERVICE_SPEC.match(path):
            text = repo.read_file(ref, path).decode("utf-8", errors="replace")
            url = web_url(repo.public_url, ref, path)
            files.append(SpecFile(path, text, "gitops", url, repo.public_url, ref))
    return files


def resolve_files(
    files: Iterable[SpecFile],
) -> tuple[list[tuple[ResolvedSLO, SpecFile]], list[str]]:
    """Resolve each file on its own, so one bad file hides nothing else."""
    resolved: list[tuple[ResolvedSLO, SpecFile]] = []
    problems: list[str] = []
    seen: dict[str, str] = {}
    for spec in files:
        try:
            slos = resolve_sources({spec.source: spec.text}, GenerateOptions())
        except InvalidSpecError as error:
            problems.extend(str(problem) for problem in error.errors)
            continue
        for slo in slos:
            if slo.id in seen:
                other = seen[slo.id]
                problems.append(f'{spec.source}: SLO id "{slo.id}" is also defined in {other}')
                continue
            seen[slo.id] = spec.source
            resolved.append((slo, spec))
    return resolved, problems


def component_owners(engine: Engine | None, services: Iterable[str]) -> dict[str, str]:
    """Return the owner ref of the catalog Component named like each service (if any)."""
    names = sorted(set(services))
    if engine is None or not names:
        return {}
    keys = {f"component:default/{name}".lower(): name for name in names}
    with Session(engine) as session:
        found = entities_by_ref(session, keys)
    return {keys[ref]: entity.owner_ref for ref, entity in found.items() if entity.owner_ref}


def owner_of(slo: ResolvedSLO, components: dict[str, str]) -> str | None:
    """Return the SLO's ``team``/``owner`` label, else the owner of its service's Component."""
    for label in TEAM_LABELS:
        if slo.labels.get(label):
            return slo.labels[label]
    return components.get(slo.service)


def build_slo_index(
    slo_paths: Sequence[str | Path],
    *,
    gitops: Callable[[], GitOpsRepo] | None = None,
    engine: Engine | None = None,
) -> SLOIndex:
    """Collect, resolve and own every SLO; problems are collected, never raised."""
    files, problems = local_spec_files(slo_paths)
    if gitops is not None:
        try:
            repo = gitops()
            repo.refresh()
            files += gitops_spec_files(repo)
        except (GitError, OSError) as error:
            problems.append(f"GitOps repository: services/*/slo.yaml cannot be read ({error})")
    resolved, more = resolve_files(files)
    components = component_owners(engine, (slo.service for slo, _ in resolved))
    entries = sorted(
        (IndexedSLO(slo, spec, owner_of(slo, components)) for slo, spec in resolved),
        key=lambda entry: (entry.service, entry.name),
    )
    return SLOIndex(tuple(entries), tuple(problems + more))
