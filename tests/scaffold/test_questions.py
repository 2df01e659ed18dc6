from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.scaffold.answers import check_service_name, validate_answers
from portal.scaffold.questions import (
    PUBLIC_ANSWERS_ONLY,
    Choice,
    Field,
    QuestionError,
    applies,
    choices_for,
    initial_values,
    parse_questions,
)

REPO = Path(__file__).resolve().parents[2]
FASTAPI_COPIER_YML = REPO / "templates" / "fastapi-service" / "copier.yml"

EVERY_TYPE = yaml.safe_load(
    """
_subdirectory: template
name:
  type: str
  help: The service name
  placeholder: my-service
title: A title            # short form: a str default
replicas: 3               # short form: an int default
ratio:
  type: float
  default: 0.5
debug:
  type: bool
  default: false
  help: Verbose logs
flavour:
  type: str
  choices: [vanilla, chocolate]
  default: vanilla
size:
  type: int
  choices:
    Small (1 CPU): 1
    Large (4 CPU): 4
  default: 1
tier:
  type: str
  choices:
    - [Gold, gold]
    - [Silver, {value: silver, validator: "{% if debug %}not with debug{% endif %}"}]
regions:
  type: str
  multiselect: true
  choices: [eu, us, ap]
  default: [eu]
extra:
  type: yaml
  default: {a: 1}
config:
  type: json
  default: "{}"
workdir:
  type: path
  default: src
debug_level:
  type: int
  default: 1
  when: "{{ debug }}"
token:
  type: str
  secret: true
  default: ""
zones:
  type: str
  choices: "{{ regions | to_yaml }}"
  default: eu
"""
)


def fields_by_name(config: dict[str, Any]) -> dict[str, Field]:
    return {field.name: field for field in parse_questions(config, "test/copier.yml")}


def test_every_copier_type_becomes_a_typed_field() -> None:
    fields = fields_by_name(EVERY_TYPE)
    assert "_subdirectory" not in fields
    kinds = {name: field.kind for name, field in fields.items()}
    assert kinds == {
        "name": "str",
        "title": "str",
        "replicas": "int",
        "ratio": "float",
        "debug": "bool",
        "flavour": "choice",
        "size": "choice",
        "tier": "choice",
        "regions": "multiselect",
        "extra": "yaml",
        "config": "json",
        "workdir": "path",
        "debug_level": "int",
        "token": "str",
        "zones": "choice",
    }
    assert fields["name"].help == "The service name"
    assert fields["name"].placeholder == "my-service"
    assert fields["name"].required and not fields["title"].required
    assert fields["replicas"].default == 3
    assert fields["size"].choices == (Choice("Small (1 CPU)", 1), Choice("Large (4 CPU)", 4))
    assert fields["tier"].choices == (
        Choice("Gold", "gold"),
        Choice("Silver", "silver", "{% if debug %}not with debug{% endif %}"),
    )
    assert fields["debug_level"].when == "{{ debug }}"
    assert fields["token"].secret
    assert fields["extra"].multiline is True and fields["name"].multiline is False


def test_when_is_evaluated_with_the_answers_so_far() -> None:
    field = fields_by_name(EVERY_TYPE)["debug_level"]
    assert applies(field, {"debug": True})
    assert not applies(field, {"debug": False})
    assert not applies(field, {})  # undefined renders empty: false, like Copier


def test_choices_are_rendered_and_typed() -> None:
    fields = fields_by_name(EVERY_TYPE)
    assert [c.value for c in choices_for(fields["size"], {})] == [1, 4]
    assert [c.value for c in choices_for(fields["zones"], {"regions": ["eu", "ap"]})] == [
        "eu",
        "ap",
    ]
    silver = choices_for(fields["tier"], {"debug": True})[1]
    assert silver.disabled == "not with debug"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"q": {"type": "str", "defualt": "x"}}, "unknown key 'defualt'"),
        ({"q": {"type": "list"}}, "field 'type'"),
        ({"q": {"type": "str", "validator": "{% if q %}"}}, "field 'validator'"),
        ({"q": {"type": "str", "multiselect": True}}, "needs choices"),
        ({"q": {"type": "str", "choices": 3}}, "field 'choices'"),
        ({"q": {"type": "str", "help": ["not", "text"]}}, "field 'help'"),
        ({"1q": "x"}, "name must be an identifier"),
    ],
)
def test_unusable_questions_are_reported_with_file_and_question(
    config: dict[str, Any], message: str
) -> None:
    with pytest.raises(QuestionError, match=r"^test/copier\.yml: ") as caught:
        parse_questions(config, "test/copier.yml")
    assert message in str(caught.value)


def test_conversion_of_form_text_to_every_type() -> None:
    fields = [f for f in fields_by_name(EVERY_TYPE).values() if not f.secret]
    raw: dict[str, object] = {
        "name": "shop",
        "replicas": " 5 ",
        "ratio": "1.25",
        "debug": ["false", "true"],  # hidden input + checked checkbox
        "debug_level": "3",
        "size": "4",
        "tier": "gold",
        "regions": ["", "us", "eu"],  # empty marker, order from the choices
        "extra": "a: [1, 2]\nb: text",
        "config": '{"k": [true, null]}',
        "zones": "us",
    }
    answers, errors = validate_answers(fields, raw)
    assert errors == {}
    assert answers == {
        "name": "shop",
        "title": "A title",
        "replicas": 5,
        "ratio": 1.25,
        "debug": True,
        "flavour": "vanilla",
        "size": 4,
        "tier": "gold",
        "regions": ["eu", "us"],
        "extra": {"a": [1, 2], "b": "text"},
        "config": {"k": [True, None]},
        "workdir": "src",
        "debug_level": 3,
        "zones": "us",
    }


def test_native_json_values_are_accepted_too() -> None:
    fields = [f for f in fields_by_name(EVERY_TYPE).values() if not f.secret]
    raw: dict[str, object] = {"name": "shop", "tier": "gold", "replicas": 2, "debug": False}
    raw["extra"] = [1]
    answers, errors = validate_answers(fields, raw)
    assert errors == {}
    assert answers["replicas"] == 2 and answers["debug"] is False and answers["extra"] == [1]
    assert "debug_level" not in answers  # `when` is false: Copier computes it


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("replicas", "five", "whole number"),
        ("replicas", "2.5", "whole number"),
        ("replicas", True, "whole number"),
        ("ratio", "nan", "must be a number"),
        ("debug", "maybe", "true or false"),
        ("extra", "a: [1", "invalid YAML"),
        ("config", "{nope}", "invalid JSON"),
        ("flavour", "mint", "not one of the choices: vanilla, chocolate"),
        ("regions", ["eu", "mars"], "not one of the choices"),
        ("title", "two\nlines", "single line"),
        ("workdir", "../../etc", "relative path"),
        ("title", "{{ 7 * 7 }}", "template syntax"),
        ("title", "{% raw %}x", "template syntax"),
        ("regions", ["eu", "{#"], "template syntax"),
        ("extra", "key: '{{ x }}'", "template syntax"),
        ("nonexistent", "x", "not a question of this template"),
    ],
)
def test_bad_answers_get_a_message_on_their_field(field: str, value: object, message: str) -> None:
    fields = [f for f in fields_by_name(EVERY_TYPE).values() if not f.secret]
    answers, errors = validate_answers(fields, {"name": "shop", "tier": "gold", field: value})
    assert message in errors[field]
    assert field not in answers
    assert set(errors) == {field}


def test_disabled_choice_reports_the_templates_reason() -> None:
    fields = [f for f in fields_by_name(EVERY_TYPE).values() if not f.secret]
    _, errors = validate_answers(fields, {"name": "x", "debug": "true", "tier": "silver"})
    assert errors == {"tier": "not with debug"}


def test_a_missing_answer_without_default_is_required() -> None:
    fields = [f for f in fields_by_name(EVERY_TYPE).values() if not f.secret]
    answers, errors = validate_answers(fields, {"name": "x"})
    assert errors == {"tier": "an answer is required"}
    assert "tier" not in answers and answers["flavour"] == "vanilla"


def test_secret_questions_are_refused() -> None:
    fields = list(fields_by_name(EVERY_TYPE).values())
    _, errors = validate_answers(fields, {"name": "x", "tier": "gold"})
    assert errors == {"token": PUBLIC_ANSWERS_ONLY}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../etc", "path separators"),
        ("a/b", "path separators"),
        ("a..b", "'..'"),
        ("Shop", "lower case"),
        ("a" * 200, "at most 40 characters (this one has 200)"),
        ("9lives", "DNS-1123"),
        ("shop-", "DNS-1123"),
        ("shop_api", "DNS-1123"),
        ("", "required"),
    ],
)
def test_service_name_rules(name: str, message: str) -> None:
    problem = check_service_name(name)
    assert problem is not None and message in problem


def test_valid_service_names() -> None:
    assert check_service_name("a") is None
    assert check_service_name("air-quality-2") is None
    assert check_service_name("a" * 40) is None


# --- the bundled template's own questions -------------------------------------------------


@pytest.fixture(scope="module")
def fastapi_fields() -> list[Field]:
    return parse_questions(yaml.safe_load(FASTAPI_COPIER_YML.read_text()), "copier.yml")


def base_answers(**overrides: object) -> dict[str, object]:
    return {"name": "air-q", "owner": "platform-team", "description": "Air quality"} | overrides


def test_template_questions_use_help_default_placeholder_and_when(
    fastapi_fields: list[Field],
) -> None:
    by_name = {field.name: field for field in fastapi_fields}
    assert by_name["name"].placeholder and by_name["name"].help and by_name["name"].validator
    assert by_name["lifecycle"].kind == "choice"
    assert by_name["environments"].kind == "multiselect"
    assert by_name["port"].default == 8080
    assert by_name["scrape_interval"].when == "{{ enable_metrics }}"
    initial = initial_values(fastapi_fields)
    assert "name" not in initial
    assert initial["memory_limit"] == initial["memory_request"] == "128Mi"
    assert initial["environments"] == ["dev", "staging", "prod"]


def test_template_defaults_validate(fastapi_fields: list[Field]) -> None:
    answers, errors = validate_answers(fastapi_fields, base_answers())
    assert errors == {}
    assert answers["image_repository"] == "registry.example.com/services/air-q"
    assert answers["scrape_interval"] == "30s"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../../etc/passwd", "path separators"),
        ("Air-Q", "lower case"),
        ("x" * 200, "at most 40 characters"),
        ("{{ cycler.__init__ }}", "template syntax"),
    ],
)
def test_template_name_errors(fastapi_fields: list[Field], name: str, message: str) -> None:
    _, errors = validate_answers(fastapi_fields, base_answers(name=name))
    assert message in errors["name"]


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"port": "80"}, "port", "must be between 1024 and 65535"),
        ({"port": "eighty"}, "port", "whole number"),
        ({"replicas_min": "4", "replicas_max": "2"}, "replicas_max", "at least the minimum (4)"),
        ({"cpu_request": "lots"}, "cpu_request", "CPU quantity"),
        ({"image_tag": "latest"}, "image_tag", "not latest"),
        ({"environments": [""]}, "environments", "at least one environment"),
        ({"owner": "Platform Team"}, "owner", "catalog Group"),
        (
            {"enable_metrics": "false", "lifecycle": "production"},
            "enable_metrics",
            "production services must expose metrics",
        ),
        ({"description": "Nice {% if %} text"}, "description", "template syntax"),
    ],
)
def test_template_validators_fail_on_their_field(
    fastapi_fields: list[Field], overrides: dict[str, object], field: str, message: str
) -> None:
    answers, errors = validate_answers(fastapi_fields, base_answers(**overrides))
    assert message in errors[field]
    assert field not in answers


def test_when_false_drops_the_dependent_answer(fastapi_fields: list[Field]) -> None:
    answers, errors = validate_answers(
        fastapi_fields, base_answers(enable_metrics="false", scrape_interval="5s")
    )
    assert errors == {}
    assert answers["enable_metrics"] is False
    assert "scrape_interval" not in answers


def test_validators_run_in_a_sandbox() -> None:
    escape = {"type": "str", "default": "", "validator": "{{ ''.__class__.__mro__ }}"}
    fields = parse_questions({"name": {"type": "str"}, "escape": escape})
    answers, errors = validate_answers(fields, {"name": "x"})
    assert "unsafe" in errors["escape"] and "escape" not in answers


@pytest.mark.parametrize("host_filter", ["fileglob", "expandvars", "expanduser", "realpath"])
def test_filters_reading_the_host_are_not_available(host_filter: str) -> None:
    question = {"type": "str", "default": "", "validator": f"{{{{ '/etc/*' | {host_filter} }}}}"}
    with pytest.raises(QuestionError, match=f"No filter named '{host_filter}'"):
        parse_questions({"probe": question})


def test_copiers_ansible_filters_are_available() -> None:
    question = {"type": "str", "validator": "{{ 'bad' if q | regex_search('^[0-9]') else '' }}"}
    fields = parse_questions({"q": question})
    assert validate_answers(fields, {"name": "svc", "q": "1abc"})[1] == {"q": "bad"}
    assert validate_answers(fields, {"name": "svc", "q": "abc"})[1] == {}


def test_template_name_is_validated_even_if_the_template_does_not_ask_it() -> None:
    fields = parse_questions({"greeting": "hello"})
    answers, errors = validate_answers(fields, {"name": "ok-name"})
    assert errors == {} and answers == {"greeting": "hello", "name": "ok-name"}
    _, errors = validate_answers(fields, {})
    assert errors == {"name": "a name is required"}
