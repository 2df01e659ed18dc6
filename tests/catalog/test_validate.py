from typing import Any

import pytest

from portal.catalog.validate import FieldError, ValidEntity, validate_document


def component(**spec: Any) -> dict[str, Any]:
    base = {"type": "service", "lifecycle": "production", "owner": "team-a"}
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "svc"},
        "spec": {**base, **spec},
    }


def errors_of(document: Any) -> list[FieldError]:
    result = validate_document(document)
    assert isinstance(result, list), "expected the document to be rejected"
    return result


def test_valid_component_keeps_unknown_fields() -> None:
    doc = component(customField={"x": 1})
    doc["metadata"]["x-extra"] = "kept"
    result = validate_document(doc)
    assert isinstance(result, ValidEntity) and result.known_kind
    assert result.envelope.model_dump()["metadata"]["x-extra"] == "kept"


def test_missing_required_spec_field_is_named() -> None:
    doc = component()
    del doc["spec"]["owner"]
    assert [(e.dotted, e.message) for e in errors_of(doc)] == [("spec.owner", "is required")]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("my-service", True),
        ("a.b_c", True),
        ("-bad", False),
        ("has space", False),
        ("x" * 64, False),
    ],
)
def test_metadata_name_rules(name: str, ok: bool) -> None:
    doc = component()
    doc["metadata"]["name"] = name
    result = validate_document(doc)
    assert isinstance(result, ValidEntity) is ok
    if not ok:
        assert isinstance(result, list) and result[0].dotted == "metadata.name"


def test_bad_link_and_tag_are_located() -> None:
    doc = component()
    doc["metadata"]["links"] = [{"url": "https://ok"}, {"title": "no url"}]
    doc["metadata"]["tags"] = ["Bad Tag"]
    paths = {e.dotted for e in errors_of(doc)}
    assert paths == {"metadata.links[1].url", "metadata.tags"}


def test_unknown_kind_is_kept_with_envelope_checks_only() -> None:
    doc = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "AiResource",
        "metadata": {"name": "skill"},
        "spec": {"anything": True},
    }
    result = validate_document(doc)
    assert isinstance(result, ValidEntity) and not result.known_kind


def test_non_mapping_document_is_rejected() -> None:
    assert errors_of(["a", "list"])[0].dotted == "(document)"


def test_group_requires_children_like_backstage() -> None:
    doc = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Group",
        "metadata": {"name": "g"},
        "spec": {"type": "team"},
    }
    assert [e.dotted for e in errors_of(doc)] == ["spec.children"]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/x", True),
        ("mailto:team@example.com", True),
        ("/catalog", True),
        ("javascript:alert(document.cookie)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>", False),
    ],
)
def test_link_urls_must_be_web_or_mail(url: str, ok: bool) -> None:
    doc = component()
    doc["metadata"]["links"] = [{"url": url}]
    result = validate_document(doc)
    assert isinstance(result, ValidEntity) is ok
    if not ok:
        assert isinstance(result, list)
        assert result[0].dotted == "metadata.links[0].url"
