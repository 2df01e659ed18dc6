"""Property-based checks of the JSON API against its own OpenAPI document (schemathesis)."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from portal.app import create_app
from portal.cli import initialise
from portal.config import Settings
from tests.conftest import REPO


@pytest.mark.parametrize(
    "path", ["/api/catalog/entities", "/api/catalog/entities/{kind}/{namespace}/{name}"]
)
def test_api_conforms_to_its_schema(settings: Settings, path: str) -> None:
    initialise(settings.model_copy(update={"catalog_paths": [str(REPO / "catalog")]}))
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    operation = schema[path]["GET"]

    @given(case=operation.as_strategy())
    @hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate()

    check()
