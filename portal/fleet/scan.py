"""The services on the GitOps ``main`` that a template generated, read from their answers files.

Copier records in each service's ``services/<name>/.copier-answers.yml`` where its template
is fetched from (``_src_path``), at which version it was rendered (``_commit``: a tag, or a
commit for a template registered at a branch) and every answer given. The fleet is read
from those files alone, in two git processes whatever the number of services
(:func:`portal.integrations.gitops_tree.read_files`). A file that cannot be read as
Copier's answers is reported by path, never skipped in silence.

A bundled template is served under the portal's public base URL, which may have changed
since a service was generated (``PORTAL_TEMPLATE_PUBLIC_BASE_URL``, or ``portal serve``'s
address): its services are recognised by the repository path ``/templates.git/<name>.git``
whatever the host. A registered template's services record its git URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import read_files
from portal.scaffold.registry.git_routes import TEMPLATES_GIT_PATH
from portal.scaffold.registry.offered import OfferedTemplate

ANSWERS_FILE = ".copier-answers.yml"
SERVICES = "services"
SOURCE_KEY, COMMIT_KEY = "_src_path", "_commit"


@dataclass(frozen=True)
class RecordedService:
    """What one service's answers file says about the template that generated it."""

    service: str
    src_path: str
    commit: str | None  # the version it was rendered (or last updated) at
    answers: dict[str, Any]  # the answers given, without Copier's own ``_`` keys

    @property
    def path(self) -> str:
        """Return the answers file's path in the GitOps repository."""
        return f"{SERVICES}/{self.service}/{ANSWERS_FILE}"


@dataclass
class RecordedFleet:
    """Every service of ``main`` with an answers file, and the files that could not be read."""

    commit: str  # the commit of main read
    services: list[RecordedService] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # path: why it was not read

    def of(self, template: OfferedTemplate) -> list[RecordedService]:
        """Return the services ``template`` generated, sorted by name."""
        return [entry for entry in self.services if generated_from(template, entry.src_path)]


def _normal(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").rstrip("/")


def generated_from(template: OfferedTemplate, src_path: str) -> bool:
    """Whether a service recording ``src_path`` was generated from ``template``."""
    recorded = template.source.url if template.source is not None else template.src
    if _normal(src_path) == _normal(recorded):
        return True
    if template.origin != "bundled":
        return False
    path = urlsplit(src_path.strip()).path.rstrip("/")
    return path.endswith(f"{TEMPLATES_GIT_PATH}/{template.info.name}.git")


def parse_answers(path: str, data: bytes) -> tuple[RecordedService | None, str | None]:
    """Return the service an answers file records, or why it cannot be read (by its line)."""
    service = path.split("/")[1]
    try:
        loaded = yaml.safe_load(data.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "is not UTF-8 text"
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        return None, f"is not valid YAML{where}"
    if not isinstance(loaded, dict):
        return None, "is not a mapping of answers"
    source = loaded.get(SOURCE_KEY)
    if not isinstance(source, str) or not source.strip():
        return None, f"records no {SOURCE_KEY}: Copier cannot update it"
    commit = loaded.get(COMMIT_KEY)
    answers = {str(key): value for key, value in loaded.items() if not str(key).startswith("_")}
    recorded = RecordedService(service, source, None if commit is None else str(commit), answers)
    return recorded, None


def read_fleet(repo: GitOpsRepo, ref: str = "main") -> RecordedFleet:
    """Return every service of ``ref`` whose folder has Copier's answers file, by name.

    Only ``services/<name>/.copier-answers.yml`` counts: an answers file deeper in a
    service belongs to a project inside it, not to the service.
    """
    tree = read_files(repo, ref, [SERVICES], suffixes=(f"/{ANSWERS_FILE}",))
    fleet = RecordedFleet(tree.commit)
    for path in tree.too_large:
        fleet.problems[path] = "is too large to be an answers file"
    for path, data in sorted(tree.files.items()):
        if len(path.split("/")) != 3:
            continue
        recorded, problem = parse_answers(path, data)
        if recorded is not None:
            fleet.services.append(recorded)
        else:
            fleet.problems[path] = f"{path} {problem}"
    return fleet
