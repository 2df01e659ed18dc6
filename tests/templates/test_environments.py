"""Every template deploys to the GitOps repository's environments (templates/CONTRACT.md).

The portal passes them as the Copier data ``portal_environments``; a template offers them,
makes one overlay per chosen one (Copier's ``yield``), and sorts them into classes
(development, staging, production) that pick the replicas. Without them (a plain
``copier copy``) it offers and renders the classic ``dev``, ``staging`` and ``prod``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.changes.environments import environment_class
from portal.integrations import copier as copier_integration
from portal.integrations.copier import render as copier_render
from portal.scaffold.answers import validate_answers
from portal.scaffold.questions import Field, applies, choices_for, default_for
from portal.scaffold.registry.bundled import PublishedTemplate, discover, publish
from portal.scaffold.registry.manifest import TemplateInfo
from tests.templates.rendering import (
    TEMPLATES_DIR,
    Rendered,
    built_overlays,
    by_kind,
    load,
    render_service,
    review_problems,
)

TEMPLATES = {info.name: info for info in discover(TEMPLATES_DIR)}
CLASSIC = ["dev", "staging", "prod"]
FLUX_EXAMPLE = ["staging", "production"]  # the clusters of Flux's reference repository
ONE_OF_EACH = ["qa", "dev-eu", "prod-us"]
NAMES = [
    *("dev", "development", "local", "dev-eu", "development-2", "local-kind"),
    *("staging", "qa", "preview", "devops", "prodigy", "production2"),
    *("prod", "production", "prod-us", "production-eu"),
]
# The replicas answered, distinct per class so an overlay shows which one it took.
REPLICAS = {"replicas_dev": "4", "replicas_staging": "2", "replicas_prod": "3"}
REPLICAS_MIN, REPLICAS_MAX = "3", "6"


def fields(info: TemplateInfo) -> dict[str, Field]:
    """The template's questions by name."""
    return {field.name: field for field in info.questions}


def classes_of(info: TemplateInfo, environments: list[str]) -> Any:
    """The template's own ``environment_classes`` for ``environments``."""
    return default_for(fields(info)["environment_classes"], {"environments": environments})


def answers_for(info: TemplateInfo, environments: list[str] | None) -> dict[str, object]:
    """The required answers, the replicas and (unless None: the default) the environments."""
    questions = fields(info)
    raw: dict[str, object] = {q.name: q.placeholder for q in info.questions if q.required}
    raw["replicas_max"] = REPLICAS_MAX
    if "replicas_min" in questions:
        raw["replicas_min"] = REPLICAS_MIN
    raw |= {name: value for name, value in REPLICAS.items() if name in questions}
    if environments is not None:
        raw["environments"] = environments
    return raw


def expected_bounds(info: TemplateInfo, environment: str) -> tuple[int, int]:
    """The autoscaler's (minimum, maximum) the answers above give in ``environment``."""
    kind = environment_class(environment)
    if "replicas_min" in fields(info):  # the template sets the others
        return {"production": (3, 6), "staging": (1, 6), "development": (1, 2)}[kind]
    return {"production": (3, 6), "staging": (2, 6), "development": (4, 6)}[kind]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, PublishedTemplate]]:
    """Every template published once, as the portal does; the Copier workers stopped after."""
    data = tmp_path_factory.mktemp("data")
    yield {name: publish(info, data) for name, info in TEMPLATES.items()}
    copier_integration.shutdown()


def render(
    published: dict[str, PublishedTemplate],
    name: str,
    environments: list[str] | None,
    chosen: list[str] | None,
    root: Path,
) -> Rendered:
    """Render template ``name`` with the repository's ``environments``, ``chosen`` of them."""
    info = TEMPLATES[name]
    return render_service(info, published[name], answers_for(info, chosen), root, environments)


def overlay_names(rendered: Rendered) -> set[str]:
    """The folders under ``deploy/overlays`` of a render."""
    return {path.name for path in (rendered.dest / "deploy" / "overlays").iterdir()}


def check_overlays(rendered: Rendered, environments: list[str]) -> None:
    """Each overlay builds, names its environment and has its class's autoscaler bounds."""
    info, name = rendered.template, rendered.answers["name"]
    overlays = built_overlays(rendered.dest)
    assert sorted(overlays) == sorted(environments)
    for environment, objects in overlays.items():
        for obj in objects:
            labels = obj["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/environment") == environment, obj["kind"]
        hpa = by_kind(objects)["HorizontalPodAutoscaler"]["spec"]
        bounds = (hpa["minReplicas"], hpa["maxReplicas"])
        assert bounds == expected_bounds(info, environment), environment
        folder = rendered.dest / "deploy" / "overlays" / environment
        kustomization = (folder / "kustomization.yaml").read_text(encoding="utf-8")
        assert f'"flux-system:{name}-{environment}:tag"' in kustomization  # image automation
        template_pins = (info.path or Path()) / "includes" / "model-pin.yaml.jinja"
        if template_pins.is_file():
            pin = (folder / "model.yaml").read_text(encoding="utf-8")
            assert f"The model version the {environment} environment of {name}" in pin


# --- the questions, evaluated as the portal's form does -------------------------------------


@pytest.mark.parametrize("info", TEMPLATES.values(), ids=list(TEMPLATES))
def test_the_environments_offered_are_the_repositorys(info: TemplateInfo) -> None:
    question = fields(info)["environments"]
    for given in (FLUX_EXAMPLE, ONE_OF_EACH):
        context = {"portal_environments": given}
        assert [choice.value for choice in choices_for(question, context)] == given
        assert default_for(question, context) == given
    # Without the portal (plain Copier): the classic three, chosen by default.
    assert [choice.value for choice in choices_for(question, {})] == CLASSIC
    assert default_for(question, {}) == CLASSIC
    # Copier without the portal (a `copier update` by hand) also offers the recorded ones.
    recorded = {"environments": FLUX_EXAMPLE}
    assert [choice.value for choice in choices_for(question, recorded)] == [*CLASSIC, "production"]
    # An environment the repository does not have is refused, naming the ones it has.
    raw = answers_for(info, ["staging", "prod"])
    _, errors = validate_answers(info.questions, raw, FLUX_EXAMPLE)
    assert errors == {"environments": "'prod' is not one of the choices: staging, production"}


@pytest.mark.parametrize("info", TEMPLATES.values(), ids=list(TEMPLATES))
def test_the_templates_classes_are_the_portals(info: TemplateInfo) -> None:
    classes = classes_of(info, NAMES)
    assert classes == {name: environment_class(name) for name in NAMES}
    assert classes_of(info, ["staging", "production"]) == {
        "staging": "staging",
        "production": "production",
    }
    # Computed, never asked: the form does not show it and the answers do not hold it.
    question = fields(info)["environment_classes"]
    assert not applies(question, {"environments": NAMES})
    answers, errors = validate_answers(info.questions, answers_for(info, None), FLUX_EXAMPLE)
    assert errors == {} and "environment_classes" not in answers


def test_each_replicas_question_is_asked_for_its_class_only() -> None:
    info = TEMPLATES["air-quality-monitor"]
    asked = {}
    for environments in (["staging", "production"], ["qa"], ["dev-eu", "prod-us"], CLASSIC):
        answers, errors = validate_answers(
            info.questions, answers_for(info, environments), environments
        )
        assert errors == {}
        asked[tuple(environments)] = sorted(name for name in REPLICAS if name in answers)
    assert asked == {
        ("staging", "production"): ["replicas_prod", "replicas_staging"],
        ("qa",): ["replicas_staging"],
        ("dev-eu", "prod-us"): ["replicas_dev", "replicas_prod"],
        ("dev", "staging", "prod"): ["replicas_dev", "replicas_prod", "replicas_staging"],
    }
    for helped, names in (("replicas_dev", "dev-*"), ("replicas_prod", "prod-*")):
        assert names in fields(info)[helped].help  # the help says which names it covers
    # The maximum is checked against the minimum of every chosen class, whatever its name.
    raw = answers_for(info, ["qa"]) | {"replicas_staging": "5", "replicas_max": "4"}
    _, errors = validate_answers(info.questions, raw, ["qa"])
    assert errors == {"replicas_max": "must be at least the staging replicas (5)"}


# --- renders --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=list(TEMPLATES))
def flux_example(
    request: pytest.FixtureRequest,
    published: dict[str, PublishedTemplate],
    tmp_path_factory: pytest.TempPathFactory,
) -> Rendered:
    """Rendered for Flux's reference repository, both environments chosen (the default)."""
    name = request.param
    root = tmp_path_factory.mktemp(f"{name}-flux")
    return render(published, name, FLUX_EXAMPLE, None, root)


def test_the_flux_examples_environments_get_one_overlay_each(flux_example: Rendered) -> None:
    assert flux_example.environments == FLUX_EXAMPLE
    assert overlay_names(flux_example) == set(FLUX_EXAMPLE)
    recorded = load(flux_example.dest / ".copier-answers.yml")
    assert recorded["environments"] == FLUX_EXAMPLE
    # Data and computed values, never answers: `copier update` recomputes them.
    assert "portal_environments" not in recorded and "environment_classes" not in recorded
    entity = load(flux_example.dest / "catalog-info.yaml")
    assert entity["metadata"]["annotations"]["portal.platform/environments"] == "staging,production"


@pytest.mark.integration
def test_the_flux_examples_overlays_build_with_their_classes_replicas(
    flux_example: Rendered,
) -> None:
    check_overlays(flux_example, FLUX_EXAMPLE)


@pytest.mark.integration
def test_the_review_checks_pass_on_the_flux_examples_overlays(flux_example: Rendered) -> None:
    assert review_problems(flux_example) == {}


@pytest.mark.integration
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_an_environment_of_each_class_gets_its_replicas(
    name: str, published: dict[str, PublishedTemplate], tmp_path: Path
) -> None:
    rendered = render(published, name, ONE_OF_EACH, ONE_OF_EACH, tmp_path)
    check_overlays(rendered, ONE_OF_EACH)


@pytest.mark.integration
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_without_a_production_environment_the_base_still_renders(
    name: str, published: dict[str, PublishedTemplate], tmp_path: Path
) -> None:
    rendered = render(published, name, ["qa", "dev-eu"], ["qa"], tmp_path)
    assert overlay_names(rendered) == {"qa"}
    hpa = load(rendered.dest / "deploy" / "base" / "hpa.yaml")
    assert hpa["spec"]["minReplicas"] >= 1
    check_overlays(rendered, ["qa"])


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_without_the_portals_environments_the_classic_three_are_rendered(
    name: str, published: dict[str, PublishedTemplate], tmp_path: Path
) -> None:
    rendered = render(published, name, None, None, tmp_path)
    assert rendered.environments == CLASSIC
    assert overlay_names(rendered) == set(CLASSIC)
    for environment in CLASSIC:
        folder = rendered.dest / "deploy" / "overlays" / environment
        hpa_patch = load(folder / "kustomization.yaml")["patches"][0]
        assert hpa_patch["target"]["kind"] == "HorizontalPodAutoscaler"
        values = {op["path"]: op["value"] for op in yaml.safe_load(hpa_patch["patch"])}
        bounds = (values["/spec/minReplicas"], values["/spec/maxReplicas"])
        assert bounds == expected_bounds(rendered.template, environment), environment


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_copier_without_the_portal_keeps_a_services_own_environments(
    name: str, published: dict[str, PublishedTemplate], tmp_path: Path
) -> None:
    """A `copier update` by hand has the recorded answers but no ``portal_environments``."""
    info = TEMPLATES[name]
    answers, errors = validate_answers(
        info.questions, answers_for(info, FLUX_EXAMPLE), FLUX_EXAMPLE
    )
    assert errors == {}
    dest = tmp_path / "services" / str(answers["name"])
    result = copier_render(published[name].src, published[name].vcs_ref, answers, dest)
    overlays = {path.split("/")[2] for path in result.files if path.startswith("deploy/overlays/")}
    assert overlays == set(FLUX_EXAMPLE)
    assert load(dest / ".copier-answers.yml")["environments"] == FLUX_EXAMPLE
