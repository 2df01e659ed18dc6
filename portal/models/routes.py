"""The Models page (``/models``) and ``GET /api/prompts``: every service's prompts on main.

Per service, each prompt with its versions (note, model parameters, variables, template)
and the labels pointing at each. Model versions arrive with the MLflow registry (issue 16);
the page says so instead of showing anything simulated.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from portal.api_errors import error_responses
from portal.deps import from_app_state
from portal.models.prompt_files import PromptSet
from portal.models.prompts import ModelsRuntime, PromptsIndex
from portal.ui.render import page

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["models"])

app_models = from_app_state("models", ModelsRuntime)
ModelsDep = Annotated[ModelsRuntime, Depends(app_models)]

MODEL_REGISTRY_NOTE = (
    "Model versions, their metrics and lineage come with the MLflow model registry (issue 16)."
)


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
def models_page(request: Request, runtime: ModelsDep) -> HTMLResponse:
    """Prompts and their versions per service, with the labels that point at each."""
    index = runtime.prompts()
    context = {"active": "models", "view": prompts_out(index), "problems": index.problems}
    return page(request, "models/models.html", context)


@api_router.get("/prompts", response_model=PromptsOut, responses=error_responses(503))
def prompts_api(runtime: ModelsDep) -> PromptsOut:
    """Return every service's prompts on the GitOps main (503 when it cannot be read)."""
    index = runtime.prompts()
    if index.commit is None and index.problems:
        raise HTTPException(503, "; ".join(index.problems))
    return prompts_out(index)
