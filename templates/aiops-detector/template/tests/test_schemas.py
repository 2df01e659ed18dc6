"""Inline points: objects or ``[timestamp, value]`` pairs, checked in bulk, refused by name.

And the other half of a quick ``/detect`` of many points: the started heap kept out of the
garbage collector's way.
"""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from app.main import create_app
from app.schemas import Points, _numeric_points
from app.settings import Settings

from .synthetic import points, series

POINTS: TypeAdapter[Any] = TypeAdapter(Points)
MONDAY = 1772409600  # 2026-03-02T00:00:00Z


def _pairs(body: list[dict[str, object]]) -> list[list[object]]:
    return [[point["timestamp"], point["value"]] for point in body]


def test_pairs_and_objects_train_and_detect_alike(client: TestClient) -> None:
    """The same points sent either way train the same model and find the same anomalies."""
    training = points(series(8, seed=31))
    as_pairs = {"series": {"cpu": _pairs(training)}}
    assert client.post("/train", json=as_pairs).status_code == 200
    fresh = series(1, seed=32, start=datetime(2026, 3, 12, tzinfo=UTC))
    numeric = [
        {"timestamp": float(t), "value": float(v) + 40.0 * (i == 100)}
        for i, (t, v) in enumerate(zip(fresh.timestamps, fresh.values, strict=True))
    ]
    by_objects = client.post("/detect", json={"series": {"cpu": numeric}})
    by_pairs = client.post("/detect", json={"series": {"cpu": _pairs(numeric)}})  # type: ignore[arg-type]
    assert by_objects.status_code == by_pairs.status_code == 200
    (found,) = by_objects.json()["results"]
    assert found["series"][0]["points_scored"] == len(numeric)
    assert found["series"] == by_pairs.json()["results"][0]["series"]


def test_the_bulk_path_reads_numbers_as_pydantic_does() -> None:
    """Numeric points skip per-point validation; the result is the same points."""
    raw: list[Any] = [[MONDAY + 0.25, 1], {"timestamp": MONDAY + 300, "value": 2.5}]
    fast = _numeric_points(raw)
    assert fast is not None
    # A string timestamp sends the whole list through pydantic: the same points come out.
    slow = POINTS.validate_python([*raw, [str(MONDAY + 600), 3]])
    assert fast == slow[:2]
    assert fast[0].timestamp == datetime(2026, 3, 2, 0, 0, 0, 250_000, tzinfo=UTC)
    assert fast[1].value == 2.5
    # What pydantic reads differently is left to it: milliseconds, booleans, NaN.
    for odd in ([[MONDAY * 1000, 1.0]], [[MONDAY, True]], [[MONDAY, float("nan")]]):
        assert _numeric_points(odd) is None
    assert POINTS.validate_python([[MONDAY * 1000, 1.0]])[0].timestamp.timestamp() == MONDAY


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([[MONDAY, float("inf")]], "series.cpu[0][1]", "finite number"),
        ([[MONDAY, 1.0], [MONDAY + 60]], "series.cpu[1][1]", "required"),
        ([[MONDAY, 1.0, 2.0]], "series.cpu[0]", "at most 2 items"),
        ([[MONDAY, 1.0], ["yesterday", 1.0]], "series.cpu[1][0]", "datetime"),
        ([[MONDAY, 1.0], {"timestamp": MONDAY + 60}], "series.cpu[1].value", "required"),
        ([[MONDAY, 1.0], "nine"], "series.cpu[1]", "tuple, list, dictionary"),
    ],
    ids=["infinite", "short pair", "long pair", "bad time", "no value", "not a point"],
)
def test_bad_points_are_refused_naming_the_point(
    client: TestClient, body: list[Any], field: str, message: str
) -> None:
    """A 422 whose error names the point and, where there is one, its part."""
    # Python's JSON writes (and reads) Infinity, which httpx's json= refuses to send.
    content = json.dumps({"series": {"cpu": body}})
    response = client.post("/detect", content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    errors = {item["field"]: item["message"] for item in response.json()["errors"]}
    assert field in errors, errors
    assert message in errors[field]


def test_a_repeated_timestamp_is_refused_whichever_form_it_takes(client: TestClient) -> None:
    """A pair and an object at the same instant (seconds and RFC 3339): the second is named."""
    body = [[MONDAY, 1.0], {"timestamp": "2026-03-02T00:00:00Z", "value": 2.0}]
    response = client.post("/train", json={"series": {"cpu": body}})
    assert response.status_code == 422
    errors = {item["field"]: item["message"] for item in response.json()["errors"]}
    assert "repeats the timestamp of series.cpu[0]" in errors["series.cpu[1].timestamp"]


def test_a_non_list_is_refused_by_pydantic() -> None:
    """The bulk path only takes lists; anything else gets pydantic's own message."""
    with pytest.raises(ValidationError, match="valid list"):
        POINTS.validate_python({"timestamp": MONDAY, "value": 1.0})


def test_the_started_service_keeps_its_heap_out_of_the_collectors_way(settings: Settings) -> None:
    """Frozen once started (libraries, rules, models loaded), given back when it stops."""
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as started:
        assert started.get("/readyz").status_code == 200
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
