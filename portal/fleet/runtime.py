"""The fleet views of one app: the template registry, the renderer and the views' caches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from sqlmodel import Session

from portal.deps import from_app_state
from portal.fleet.local_edits import LocalEditsReader
from portal.fleet.release_view import ReleaseReader
from portal.fleet.releases import TemplateVersion
from portal.fleet.scan import RecordedFleet, generated_from, read_fleet
from portal.fleet.status import Fleet, FleetService, fleet_of
from portal.integrations.gitops import GitOpsRepo
from portal.scaffold.registry.offered import OfferedTemplate
from portal.scaffold.runtime import ScaffoldRuntime


@dataclass(frozen=True)
class ServiceTemplate:
    """The template one service was generated from, its versions and the service's state."""

    template: OfferedTemplate
    versions: list[TemplateVersion]
    service: FleetService


class FleetRuntime:
    """Reads a template's fleet for the pages and the API, with the app's scaffold context."""

    def __init__(self, scaffold: ScaffoldRuntime) -> None:
        self.scaffold = scaffold
        context = scaffold.context
        scratch = context.settings.resolved_scratch_dir()
        self.edits = LocalEditsReader(context.renderer, scratch)
        self.releases = ReleaseReader(context.renderer, scratch)

    def fleet(
        self,
        session: Session,
        gitops: Callable[[], GitOpsRepo],
        name: str,
        *,
        local_edits: bool = True,
    ) -> Fleet | None:
        """Return the fleet of template ``name`` on ``main``; None when no such template.

        Raises ``GitError`` when the GitOps repository cannot be read now (answered 503).
        """
        template = self.scaffold.context.registry.get(name)
        if template is None:
            return None
        repo = gitops()
        recorded = read_fleet(repo, "main")
        environments = self.scaffold.environments(lambda: repo) or []
        return fleet_of(
            session,
            repo,
            recorded,
            template,
            edits=self.edits if local_edits else None,
            environments=environments,
        )

    def service(
        self, session: Session, gitops: Callable[[], GitOpsRepo], service: str
    ) -> ServiceTemplate | None:
        """Return the template that generated ``services/<service>`` on main, and its state.

        None when the service has no answers file, or no offered template generated it.
        Raises ``GitError`` when the GitOps repository cannot be read now.
        """
        repo = gitops()
        recorded = read_fleet(repo, "main")
        entry = next((item for item in recorded.services if item.service == service), None)
        if entry is None:
            return None
        registry = self.scaffold.context.registry
        template = next(
            (item for item in registry.all() if generated_from(item, entry.src_path)), None
        )
        if template is None:
            return None
        only = RecordedFleet(recorded.commit, [entry])
        environments = self.scaffold.environments(lambda: repo) or []
        fleet = fleet_of(session, repo, only, template, edits=self.edits, environments=environments)
        return ServiceTemplate(template, fleet.versions, fleet.services[0])


FleetDep = Annotated[FleetRuntime, Depends(from_app_state("fleet", FleetRuntime))]
