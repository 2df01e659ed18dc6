"""MlflowRegistry against a real MLflow tracking server, and its answers to a broken one.

Models, runs, metrics, versions and aliases are created over MLflow's REST API as the
services' training code does, then read back with ``MlflowRegistry`` with small pages so
that paging really happens. The server is shared by the test process: every name here
carries a fresh suffix.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from portal.config import Settings
from portal.integrations.mlflow import (
    MlflowRegistry,
    RegistryError,
    RegistryUnavailableError,
    mlflow_registry,
    name_filter,
)
from tests.integrations.mlflow_support import CountingTransport, Rest


@pytest.fixture
def rest(mlflow_url: str) -> Iterator[Rest]:
    client = Rest(mlflow_url)
    yield client
    client.client.close()


@pytest.fixture
def counted(mlflow_url: str) -> Iterator[tuple[MlflowRegistry, CountingTransport]]:
    transport = CountingTransport()
    registry = MlflowRegistry(mlflow_url, 30, transport, page_size=2, run_batch=2)
    yield registry, transport
    registry.close()


def test_models_and_versions_are_read_with_metrics_tags_and_aliases(
    rest: Rest, counted: tuple[MlflowRegistry, CountingTransport]
) -> None:
    registry, transport = counted
    suffix = uuid.uuid4().hex
    name = f"svc-{suffix}-air-quality"
    runs = rest.model(
        name,
        [{"holdout_mae": 3.0}, {"holdout_mae": 2.5, "holdout_rmse": 4.0}, {"holdout_mae": 2.75}],
        sha256="ab" * 32,
        git_commit="c0ffee",
    )
    for other in ("a", "b"):  # more models than one page holds
        rest.model(f"svc-{suffix}-{other}", [{"holdout_mae": 1.0}])
    rest.post("registered-models/alias", {"name": name, "alias": "champion", "version": "2"})

    models = {model.name: model for model in registry.models()}
    versions = registry.versions(name)

    assert transport.paths["registered-models/search"] >= 2  # paged: 2 models a page
    model = models[name]
    assert model.aliases == {"champion": "2"} and model.latest_version == "3"
    assert {f"svc-{suffix}-a", f"svc-{suffix}-b"} <= set(models)
    assert [v.version for v in versions] == ["1", "2", "3"]
    assert [v.run_id for v in versions] == runs
    assert [dict(v.metrics) for v in versions] == [
        {"holdout_mae": 3.0},
        {"holdout_mae": 2.5, "holdout_rmse": 4.0},
        {"holdout_mae": 2.75},
    ]
    assert [v.aliases for v in versions] == [(), ("champion",), ()]
    first = versions[0]
    assert first.status == "READY" and first.source == f"runs:/{runs[0]}/model"
    assert first.tags == {"sha256": "ab" * 32, "git_commit": "c0ffee"}
    assert first.created_at is not None and first.created_at.tzinfo is not None
    # Three versions in pages of two; three runs' metrics two ids a call: never one a version.
    assert transport.paths["model-versions/search"] == 2
    assert transport.paths["runs/search"] == 2


@pytest.mark.parametrize(
    "shape",
    [
        "it's-{}",
        'say-"{}"',
        "both-'\"-{}",
        "back\\slash-{}\\",
        "{}' OR name LIKE '%",
        '{}" OR name LIKE "%',
    ],
)
def test_quotes_and_backslashes_in_a_name_select_exactly_that_model(
    rest: Rest, mlflow_url: str, shape: str
) -> None:
    suffix = uuid.uuid4().hex
    name = shape.format(suffix)
    rest.model(name, [{"holdout_mae": 1.0}, {"holdout_mae": 2.0}])
    # Names a LIKE pattern of the quoted name (quotes and backslashes as "_") also matches.
    for decoy in {name.replace("'", "x").replace('"', "y").replace("\\", "z"), f"{suffix}-x"}:
        if decoy != name:
            rest.model(decoy, [{"holdout_mae": 9.0}])
    with MlflowRegistry(mlflow_url, 30) as registry:
        versions = registry.versions(name)
    assert [(v.name, v.version, dict(v.metrics)) for v in versions] == [
        (name, "1", {"holdout_mae": 1.0}),
        (name, "2", {"holdout_mae": 2.0}),
    ]


def test_an_unknown_model_has_no_versions(mlflow_url: str) -> None:
    with MlflowRegistry(mlflow_url, 30) as registry:
        assert registry.versions(f"nothing-{uuid.uuid4().hex}") == []


def test_a_refused_request_names_the_path(mlflow_url: str) -> None:
    refused = pytest.raises(RegistryError, match=r"refused registered-models/search \(400\)")
    with MlflowRegistry(mlflow_url, 30, page_size=5000) as registry, refused:  # at most 1000
        registry.models()


def test_a_server_that_is_down_is_unavailable(refusing_port: int) -> None:
    port = refusing_port
    registry = MlflowRegistry(f"http://user:secret@127.0.0.1:{port}", 2)
    with registry, pytest.raises(RegistryUnavailableError) as caught:
        registry.models()
    message = str(caught.value)
    assert message == f"MLflow at http://127.0.0.1:{port} is not reachable (connection refused)"


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # connections complete, nothing ever answers
        port = silent.getsockname()[1]
        registry = MlflowRegistry(f"http://127.0.0.1:{port}", 0.3)
        with registry, pytest.raises(RegistryUnavailableError, match=r"no answer within 0.3 s"):
            registry.versions("anything")


def answering(status: int, body: bytes, content_type: str = "application/json") -> MlflowRegistry:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return MlflowRegistry("http://mlflow.example.invalid", 1, httpx.MockTransport(handler))


def test_a_server_error_is_unavailable_with_its_message() -> None:
    registry = answering(503, b'{"error_code": "TEMPORARILY_UNAVAILABLE", "message": "db"}')
    with registry, pytest.raises(RegistryUnavailableError, match=r"answered 503 to .*search: db$"):
        registry.models()


def test_an_answer_that_is_not_json_is_an_error_naming_the_path() -> None:
    registry = answering(200, b"<html>login</html>", "text/html")
    with registry, pytest.raises(RegistryError, match=r"registered-models/search did not answer"):
        registry.models()


def test_a_list_of_the_wrong_type_is_an_error() -> None:
    registry = answering(200, b'{"registered_models": {"name": "x"}}')
    with registry, pytest.raises(RegistryError, match=r"registered_models is not a list"):
        registry.models()


def test_a_repeated_page_token_stops_the_paging() -> None:
    registry = answering(200, b'{"registered_models": [], "next_page_token": "again"}')
    with registry, pytest.raises(RegistryError, match=r"repeated a page token"):
        registry.models()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain-model", "name = 'plain-model'"),
        ("it's", 'name = "it\'s"'),
        ('say"hi"', "name = 'say\"hi\"'"),
        ("both'\"", "name LIKE 'both__'"),
        ("ends\\", "name LIKE 'ends_'"),
    ],
)
def test_name_filters(name: str, expected: str) -> None:
    assert name_filter(name) == expected


def test_the_factory_needs_a_url(settings: Settings) -> None:
    assert mlflow_registry(settings.model_copy(update={"mlflow_url": None})) is None
    configured = settings.model_copy(
        update={"mlflow_url": "http://mlflow.example.invalid:5000/", "mlflow_timeout_seconds": 2.5}
    )
    registry = mlflow_registry(configured)
    assert isinstance(registry, MlflowRegistry)
    assert registry.url == "http://mlflow.example.invalid:5000" and registry.timeout == 2.5
    registry.close()
