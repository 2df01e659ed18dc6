"""Relations computed from entity specs, each emitted in both directions as Backstage does."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from portal.catalog.refs import EntityRef, RefError, parse_ref
from portal.catalog.validate import FieldError

# (spec field, default target kind, relation from this entity, inverse relation)
_RULES: dict[str, list[tuple[str, str | None, str, str]]] = {
    "component": [
        ("owner", "group", "ownedBy", "ownerOf"),
        ("system", "system", "partOf", "hasPart"),
        ("subcomponentOf", "component", "partOf", "hasPart"),
        ("providesApis", "api", "providesApi", "apiProvidedBy"),
        ("consumesApis", "api", "consumesApi", "apiConsumedBy"),
        ("dependsOn", "component", "dependsOn", "dependencyOf"),
        ("dependencyOf", "component", "dependencyOf", "dependsOn"),
    ],
    "api": [
        ("owner", "group", "ownedBy", "ownerOf"),
        ("system", "system", "partOf", "hasPart"),
    ],
    "resource": [
        ("owner", "group", "ownedBy", "ownerOf"),
        ("system", "system", "partOf", "hasPart"),
        ("dependsOn", "component", "dependsOn", "dependencyOf"),
        ("dependencyOf", "component", "dependencyOf", "dependsOn"),
    ],
    "system": [
        ("owner", "group", "ownedBy", "ownerOf"),
        ("domain", "domain", "partOf", "hasPart"),
    ],
    "domain": [
        ("owner", "group", "ownedBy", "ownerOf"),
        ("subdomainOf", "domain", "partOf", "hasPart"),
    ],
    "group": [
        ("parent", "group", "childOf", "parentOf"),
        ("children", "group", "parentOf", "childOf"),
        ("members", "user", "hasMember", "memberOf"),
    ],
    "user": [
        ("memberOf", "group", "memberOf", "hasMember"),
    ],
}
# Kinds we do not model (for example AiResource) still say who owns them and where they belong.
_GENERIC = [
    ("owner", "group", "ownedBy", "ownerOf"),
    ("system", "system", "partOf", "hasPart"),
]
KNOWN_RELATION_KINDS = set(_RULES) | {"location"}

RELATION_LABELS = {
    "ownedBy": "Owned by",
    "ownerOf": "Owner of",
    "partOf": "Part of",
    "hasPart": "Has part",
    "providesApi": "Provides API",
    "apiProvidedBy": "API provided by",
    "consumesApi": "Consumes API",
    "apiConsumedBy": "API consumed by",
    "dependsOn": "Depends on",
    "dependencyOf": "Dependency of",
    "memberOf": "Member of",
    "hasMember": "Has member",
    "childOf": "Child of",
    "parentOf": "Parent of",
}


@dataclass(frozen=True)
class RelationRow:
    """A relation ready to be stored: ``source --type--> target`` declared by ``origin``."""

    origin: str
    source: str
    type: str
    target: str


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (item for item in value if isinstance(item, str))


def compute_relations(self_ref: EntityRef, spec: dict[str, Any] | None) -> list[RelationRow]:
    """Return every relation (and its inverse) that the entity's spec declares.

    References that cannot be parsed are skipped; they were reported by validation when
    the field is one Backstage defines.
    """
    if not spec:
        return []
    kind = self_ref.kind.lower()
    if kind == "location":
        return []
    rules = _RULES.get(kind, _GENERIC)
    me = self_ref.key
    rows: list[RelationRow] = []
    for field_name, default_kind, forward, inverse in rules:
        for text in _values(spec.get(field_name)):
            try:
                target = parse_ref(
                    text, default_kind=default_kind, default_namespace=self_ref.namespace
                ).key
            except RefError:
                continue
            rows.append(RelationRow(me, me, forward, target))
            rows.append(RelationRow(me, target, inverse, me))
    return rows


def ref_field_errors(kind: str, spec: dict[str, Any]) -> list[FieldError]:
    """Return an error for every relation field whose value is not a valid entity reference."""
    errors: list[FieldError] = []
    rules = _RULES.get(kind.lower(), [] if kind.lower() == "location" else _GENERIC)
    for field_name, default_kind, _forward, _inverse in rules:
        value = spec.get(field_name)
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for index, text in enumerate(items):
            path: tuple[str | int, ...] = (
                ("spec", field_name) if isinstance(value, str) else ("spec", field_name, index)
            )
            if not isinstance(text, str):
                errors.append(FieldError(path, "must be an entity reference string"))
                continue
            try:
                parse_ref(text, default_kind=default_kind)
            except RefError as exc:
                errors.append(FieldError(path, str(exc)))
    return errors
