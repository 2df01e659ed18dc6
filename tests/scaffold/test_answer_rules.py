"""The portal's rules on every answer: valid text, bounded quantities and whole numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portal.scaffold.answers import text_problem, validate_answers
from portal.scaffold.questions import Field, parse_questions, quantity_kind
from tests.conftest import REPO

FASTAPI = REPO / "templates" / "fastapi-service" / "copier.yml"
AIR_QUALITY = REPO / "templates" / "air-quality-monitor" / "copier.yml"


def fields_of(copier_yml: Path) -> list[Field]:
    return parse_questions(yaml.safe_load(copier_yml.read_text()), "copier.yml")


def errors_for(fields: list[Field], **answers: object) -> dict[str, str]:
    base = {"name": "air-q", "owner": "platform-team", "description": "Air quality"}
    return validate_answers(fields, base | answers)[1]


@pytest.fixture(scope="module")
def fastapi() -> list[Field]:
    return fields_of(FASTAPI)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("\ud800", "U+D800 at position 1 is a lone surrogate"),
        ("fine \udfff", "U+DFFF at position 6 is a lone surrogate"),
        ("nul\x00byte", "control characters (U+0000 at position 4)"),
        ("escape \x1b[31m", "control characters (U+001B at position 8)"),
        ("delete\x7f", "control characters (U+007F at position 7)"),
        ("next line\x85", "control characters (U+0085 at position 10)"),
        ("\u202egnp.exe", "control characters (U+202E at position 1)"),
        ("tab\there", "single line without control characters (U+0009 at position 4)"),
        ("x" * 1001, "at most 1,000 characters (this one has 1,001)"),
        ("x" * 10_000_000, "at most 65,536 characters (this one has 10,000,000)"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_on_its_field(
    fastapi: list[Field], value: str, message: str
) -> None:
    errors = errors_for(fastapi, description=value)

    assert message in errors["description"], errors


def test_every_answer_is_checked_also_inside_structures_and_keys() -> None:
    assert text_problem({"ok": ["fine", "\ud800"]}) is not None
    assert text_problem({"\x00": "fine"}) is not None
    assert text_problem(["a\nb\tc"]) is None  # multi-line text keeps its tabs and lines
    assert text_problem("a\nb", multiline=False) is not None
    assert text_problem(42) is None


def test_multiline_questions_keep_line_breaks_and_tabs_but_not_other_controls() -> None:
    fields = parse_questions({"notes": {"type": "str", "multiline": True, "default": ""}})

    assert validate_answers(fields, {"name": "svc", "notes": "a\n\tb\r\n"})[1] == {}
    assert "U+0007" in validate_answers(fields, {"name": "svc", "notes": "bell\x07"})[1]["notes"]


def test_an_unknown_key_that_is_not_text_is_named_escaped() -> None:
    fields = parse_questions({"q": {"type": "str", "default": ""}})

    errors = validate_answers(fields, {"name": "svc", "\ud800\x00": "x"})[1]

    assert errors == {"\\ud800\\x00": "not a question of this template"}
    "".join(errors).encode("utf-8")  # the reply can be written


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("memory_request", "99999999999999999999999999Gi", "at most 512Gi of memory per container"),
        ("memory_limit", "513Gi", "at most 512Gi of memory per container (513Gi is more)"),
        ("cpu_request", "65", "at most 64 CPU cores per container (65 is more)"),
        ("cpu_limit", "99999999999999999999999", "at most 64 CPU cores per container"),
        ("replicas_min", "0", "must be between 1 and 50"),  # the template's own bound first
    ],
)
def test_quantities_are_bounded(fastapi: list[Field], field: str, value: str, message: str) -> None:
    errors = errors_for(fastapi, **{field: value})

    assert message in errors[field], errors


def test_quantities_at_their_bounds_pass(fastapi: list[Field]) -> None:
    answers = {"cpu_request": "64", "cpu_limit": "64000m", "memory_request": "512Gi"}

    assert errors_for(fastapi, memory_limit="524288Mi", **answers) == {}


def test_replica_counts_are_bounded_even_when_a_template_allows_more() -> None:
    lax = {"worker_replicas": {"type": "int", "default": 1}, "min_replicas": 1}
    fields = parse_questions(lax)

    assert validate_answers(fields, {"name": "svc", "worker_replicas": 100})[1] == {}
    errors = validate_answers(fields, {"name": "svc", "worker_replicas": 101, "min_replicas": -1})
    assert errors[1] == {
        "worker_replicas": "must be between 0 and 100 replicas",
        "min_replicas": "must be between 0 and 100 replicas",
    }


def test_quantities_without_a_template_validator_are_still_parsed() -> None:
    fields = parse_questions({"cpu": "1", "gpu_memory": {"type": "str", "default": "1Gi"}})

    errors = validate_answers(fields, {"name": "svc", "cpu": "a lot", "gpu_memory": "1e40"})[1]

    assert errors == {
        "cpu": "must be a CPU quantity such as 500m or 2",
        "gpu_memory": "at most 512Gi of memory per container (1e40 is more)",
    }


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("cpu_request", "cpu"),
        ("worker_cpu_limit", "cpu"),
        ("cpu", "cpu"),
        ("memory_limit", "memory"),
        ("cache_mem", "memory"),
        ("replicas_dev", "replicas"),
        ("min_replicas", "replicas"),
        ("cpu_architecture", None),
        ("memory_backend", None),
        ("description", None),
    ],
)
def test_a_question_name_says_what_it_holds(name: str, kind: str | None) -> None:
    assert quantity_kind(name) == kind


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("9" * 5000, "must be a whole number that fits in 64 bits"),  # once a ValueError: 500
        (10**30, "must be a whole number that fits in 64 bits"),
        ("-" + "0" * 30 + "9", ""),
        ("0x1F90", "must be a whole number"),
        ("1_024", "must be a whole number"),
        (8080.5, "must be a whole number"),
    ],
)
def test_whole_numbers_fit_in_64_bits(fastapi: list[Field], value: object, message: str) -> None:
    errors = errors_for(fastapi, port=value)

    assert message in errors["port"], errors


def test_a_float_beyond_range_is_refused_not_a_crash() -> None:
    fields = parse_questions({"ratio": {"type": "float", "default": 0.5}})

    assert validate_answers(fields, {"name": "svc", "ratio": 10**400})[1] == {
        "ratio": "must be a number"
    }


def test_the_air_quality_template_is_bounded_too() -> None:
    fields = fields_of(AIR_QUALITY)

    errors = errors_for(fields, memory_request="99999999999999999999999999Gi", cpu_limit="128")

    assert errors["memory_request"].startswith("at most 512Gi")
    assert errors["cpu_limit"].startswith("at most 64 CPU cores")
