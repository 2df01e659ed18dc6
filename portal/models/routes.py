"""The Models pages and their JSON API: the MLflow registry's models and every service's prompts.

``/models`` shows the registered models grouped by catalog component and team (champion,
challenger, what each environment serves) above the prompts of every service on main
(each prompt's versions and the labels pointing at them). ``/models/{name}`` shows one
model: its versions with their metrics, a chart per metric, what each environment serves,
and the promotion and rollback forms with their audit (:mod:`portal.models.promotion_view`).
When MLflow is not configured or does not answer the pages say so (never a 5xx); the API
answers 503 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from portal.api_errors import error_responses
from portal.db import SessionDep
from portal.deps import from_app_state
from portal.models.promotion_view import promotion_context
from portal.models.prompt_files import PromptSet
from portal.models.prompts import ModelsRuntime, PromptsIndex
from portal.models.registry_api import (
    ModelDetailOut,
    ModelsOut,
    charts_json,
    detail_out,
    models_out,
)
from portal.models.registry_runtime import RegistryRuntime
from portal.ui.render import page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["models"])

app_models = from_app_state("models", ModelsRuntime)
ModelsDep = Annotated[ModelsRuntime, Depends(app_models)]
app_model_registry = from_app_state("model_registry", RegistryRuntime)
RegistryDep = Annotated[RegistryRuntime, Depends(app_model_registry)]

MODEL_REGISTRY_NOTE = "Model versions and their metrics: GET /api/models (the MLflow registry)."


class PromptVersionOut(BaseModel):
    """One immutable version of a prompt, and the labels that point at it."""

    version: int
    file: str
    note: str
    model_parameters: dict[str, Any]
    variables: list[str]
    template: str
    sha256: str
    labels: list[str]


class PromptOut(BaseModel):
    """One prompt: where each label points, and its versions, oldest first."""

    name: str
    labels: dict[str, int]
    versions: list[PromptVersionOut]


class ServicePromptsOut(BaseModel):
    """One service's prompts, and every problem of its prompt files (file and line)."""

    service: str
    prompts: list[PromptOut]
    problems: list[str]


class PromptsOut(BaseModel):
    """Every service's prompts on the GitOps main, at ``commit``."""

    commit: str | None
    services: list[ServicePromptsOut]
    model_registry: str


def _prompts_out(prompts: PromptSet) -> list[PromptOut]:
    return [
        PromptOut(
            name=name,
            labels=dict(sorted(prompts.labels.get(name, {}).items())),
            versions=[
                PromptVersionOut(
                    version=version.version,
                    file=version.file,
                    note=version.note,
                    model_parameters=version.model_parameters,
                    variables=list(version.variables),
                    template=version.template,
                    sha256=version.sha256,
                    labels=prompts.labels_at(name, version.version),
                )
                for version in prompts.versions_of(name)
            ],
        )
        for name in prompts.names()
    ]


def prompts_out(index: PromptsIndex) -> PromptsOut:
    """Describe the index as the API and the page show it."""
    return PromptsOut(
        commit=index.commit,
        services=[
            ServicePromptsOut(
                service=entry.service,
                prompts=_prompts_out(entry.prompts),
                problems=[str(problem) for problem in entry.prompts.problems],
            )
            for entry in index.services
        ],
        model_registry=MODEL_REGISTRY_NOTE,
    )


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request, runtime: ModelsDep, registry: RegistryDep) -> HTMLResponse:
    """Show the registry's models by component and team, then every service's prompts."""
    index = runtime.prompts()
    context = {
        "active": "models",
        "overview": registry.overview(),
        "view": prompts_out(index),
        "problems": index.problems,
    }
    return page(request, "models/models.html", context)


@router.get("/models/{name}", response_class=HTMLResponse)
def model_page(
    request: Request, session: SessionDep, registry: RegistryDep, name: str
) -> HTMLResponse:
    """One model: versions, metrics and charts, serving, promotion, rollback and audit."""
    detail = registry.detail(name)
    if detail is None:
        raise HTTPException(404, f"There is no model {name} in the registry or the catalog.")
    context = {
        "active": "models",
        "detail": detail,
        "charts": charts_json(detail),
        **promotion_context(request, session, detail),
    }
    return page(request, "models/model.html", context)


@api_router.get("/models", response_model=ModelsOut, responses=error_responses(503))
def models_api(registry: RegistryDep) -> ModelsOut:
    """Return every model by component and team (503 when MLflow does not answer)."""
    overview = registry.overview()
    if overview.registry.state == "unreachable":
        raise HTTPException(503, overview.registry.error or "MLflow does not answer")
    return models_out(overview)


@api_router.get(
    "/models/{name}",
    response_model=ModelDetailOut,
    responses=error_responses(
        422, 503, described={404: "No such model in the registry or catalog"}
    ),
)
def model_api(registry: RegistryDep, name: str) -> ModelDetailOut:
    """Return one model's versions, metrics and serving (503 when MLflow does not answer)."""
    detail = registry.detail(name)
    if detail is None:
        raise HTTPException(404, f"There is no model {name} in the registry or the catalog.")
    if detail.registry.state == "unreachable":
        raise HTTPException(503, detail.registry.error or "MLflow does not answer")
    return detail_out(detail)


@api_router.get("/prompts", response_model=PromptsOut, responses=error_responses(503))
def prompts_api(runtime: ModelsDep) -> PromptsOut:
    """Return every service's prompts on the GitOps main (503 when it cannot be read)."""
    index = runtime.prompts()
    if index.commit is None and index.problems:
        raise HTTPException(503, "; ".join(index.problems))
    return prompts_out(index)
