"""Which component owns a registered model, and the validation policy its annotations set."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from sqlmodel import Session

from portal.catalog.importer import import_locations
from portal.config import Settings
from portal.models.owners import (
    DIRECTION_ANNOTATION,
    METRIC_ANNOTATION,
    MODELS_ANNOTATION,
    TOLERANCE_ANNOTATION,
    ValidationPolicy,
    model_names,
    model_owners,
    validation_policy,
)

CATALOG = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: air-team}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: munich-air
  annotations:
    portal.platform/models: "munich-air-air-quality, munich-air-extra"
    portal.platform/model-metric: holdout_mae
    portal.platform/model-metric-direction: lower
    portal.platform/model-tolerance: "0.05"
spec: {type: service, lifecycle: production, owner: air-team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: zz-copycat
  annotations:
    portal.platform/models: munich-air-air-quality
spec: {type: service, lifecycle: production, owner: air-team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: no-models}
spec: {type: service, lifecycle: production, owner: air-team}
"""


def test_components_name_their_models(session: Session, settings: Settings, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog-info.yaml"
    catalog.write_text(CATALOG, encoding="utf-8")
    import_locations(session, [str(catalog)], settings)
    owners = model_owners(session)
    assert sorted(owners) == ["munich-air-air-quality", "munich-air-extra"]
    owner = owners["munich-air-air-quality"]
    assert owner.service == "munich-air"  # the first component by ref keeps a shared name
    assert owner.owner_ref == "group:default/air-team"
    assert owner.policy == ValidationPolicy("holdout_mae", "lower", 0.05)


def test_model_names_drop_what_is_not_a_name() -> None:
    annotations = {MODELS_ANNOTATION: "good-one, , bad name, ../up,ok.v2"}
    assert model_names(annotations) == ["good-one", "ok.v2"]
    assert model_names({MODELS_ANNOTATION: 3}) == []
    assert model_names({}) == []


def test_defaults_without_annotations() -> None:
    assert validation_policy({}) == (ValidationPolicy(None, None, 0.0), [])


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ({METRIC_ANNOTATION: "  "}, f"{METRIC_ANNOTATION}: '  ' is not a metric name"),
        ({DIRECTION_ANNOTATION: "down"}, f"{DIRECTION_ANNOTATION}: 'down' is neither"),
        ({TOLERANCE_ANNOTATION: "5%"}, f"{TOLERANCE_ANNOTATION}: '5%' is not a fraction"),
        ({TOLERANCE_ANNOTATION: "nan"}, f"{TOLERANCE_ANNOTATION}: 'nan' is not a fraction"),
        ({TOLERANCE_ANNOTATION: "1.5"}, f"{TOLERANCE_ANNOTATION}: '1.5' is not a fraction"),
        ({TOLERANCE_ANNOTATION: "-0.1"}, f"{TOLERANCE_ANNOTATION}: '-0.1' is not a fraction"),
    ],
)
def test_a_bad_annotation_is_named_and_its_default_used(
    annotations: dict[str, str], problem: str
) -> None:
    policy, problems = validation_policy({**annotations, METRIC_ANNOTATION + "x": "ignored"})
    assert len(problems) == 1
    assert problems[0].startswith(problem)
    assert not math.isnan(policy.tolerance)
    assert policy.tolerance == 0.0


def test_every_bad_annotation_is_reported_at_once() -> None:
    policy, problems = validation_policy(
        {METRIC_ANNOTATION: "", DIRECTION_ANNOTATION: "up", TOLERANCE_ANNOTATION: "x"}
    )
    assert len(problems) == 3
    assert policy == ValidationPolicy()
