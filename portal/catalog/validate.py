"""Validation of catalog documents against Backstage's ``backstage.io/v1alpha1`` rules.

Known kinds get their required spec fields checked; unknown kinds and unknown fields are
kept as they are (round trip), only the envelope and metadata are enforced for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NAME_RE = re.compile(r"^[a-zA-Z0-9]+([-_.][a-zA-Z0-9]+)*$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
TAG_RE = re.compile(r"^[a-z0-9:+#]+(-[a-z0-9:+#]+)*$")
LINK_SCHEMES = {"http", "https", "mailto", ""}
API_VERSION_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]+$")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", str_strip_whitespace=False)


class Link(_Open):
    """One entry of ``metadata.links``."""

    url: str = Field(min_length=1)
    title: str | None = None
    icon: str | None = None
    type: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # Links are rendered as <a href>: a javascript: or data: URL from a catalog file
        # would run in the portal's origin, so only web and mail links are accepted.
        scheme = value.split(":", 1)[0].lower() if ":" in value.split("/", 1)[0] else ""
        if scheme not in LINK_SCHEMES:
            raise ValueError(f"must be an http(s) or mailto URL, not {scheme}:")
        return value


class Metadata(_Open):
    """The ``metadata`` block shared by every kind."""

    name: str = Field(max_length=63)
    namespace: str = Field(default="default", max_length=63)
    title: str | None = None
    description: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError("must be letters, digits and single -_. separators, e.g. my-service")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if not NAMESPACE_RE.match(value):
            raise ValueError("must be lower-case letters, digits and single dashes")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if len(tag) > 63 or not TAG_RE.match(tag):
                raise ValueError(f"tag {tag!r} must be lower-case letters, digits, :+# and -")
        return value


class Envelope(_Open):
    """What every entity document has, whatever its kind."""

    apiVersion: str  # noqa: N815 - Backstage field name
    kind: str = Field(min_length=1, max_length=63)
    metadata: Metadata
    spec: dict[str, Any] | None = None

    @field_validator("apiVersion")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if not API_VERSION_RE.match(value):
            raise ValueError("must look like backstage.io/v1alpha1")
        return value


RefList = list[str]


class ComponentSpec(_Open):
    """``Component`` spec (service, website, library ...)."""

    type: str = Field(min_length=1)
    lifecycle: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    system: str | None = None
    subcomponentOf: str | None = None  # noqa: N815
    providesApis: RefList = Field(default_factory=list)  # noqa: N815
    consumesApis: RefList = Field(default_factory=list)  # noqa: N815
    dependsOn: RefList = Field(default_factory=list)  # noqa: N815
    dependencyOf: RefList = Field(default_factory=list)  # noqa: N815


class ApiSpec(_Open):
    """``API`` spec; the definition is optional because MCP servers have ``remotes`` instead."""

    type: str = Field(min_length=1)
    lifecycle: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    system: str | None = None
    definition: Any = None


class ResourceSpec(_Open):
    """``Resource`` spec (databases, buckets ...)."""

    type: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    system: str | None = None
    dependsOn: RefList = Field(default_factory=list)  # noqa: N815
    dependencyOf: RefList = Field(default_factory=list)  # noqa: N815


class SystemSpec(_Open):
    """``System`` spec."""

    owner: str = Field(min_length=1)
    domain: str | None = None
    type: str | None = None


class DomainSpec(_Open):
    """``Domain`` spec."""

    owner: str = Field(min_length=1)
    subdomainOf: str | None = None  # noqa: N815
    type: str | None = None


class GroupSpec(_Open):
    """``Group`` spec; ``children`` is required by Backstage (it may be empty)."""

    type: str = Field(min_length=1)
    children: RefList
    parent: str | None = None
    members: RefList = Field(default_factory=list)
    profile: dict[str, Any] = Field(default_factory=dict)


class UserSpec(_Open):
    """``User`` spec."""

    memberOf: RefList = Field(default_factory=list)  # noqa: N815
    profile: dict[str, Any] = Field(default_factory=dict)


class LocationSpec(_Open):
    """``Location`` spec: where more catalog files are."""

    type: str | None = None
    target: str | None = None
    targets: RefList = Field(default_factory=list)
    presence: str | None = None


SPEC_MODELS: dict[str, type[_Open]] = {
    "component": ComponentSpec,
    "api": ApiSpec,
    "resource": ResourceSpec,
    "system": SystemSpec,
    "domain": DomainSpec,
    "group": GroupSpec,
    "user": UserSpec,
    "location": LocationSpec,
}
KNOWN_KINDS = {
    "component": "Component",
    "api": "API",
    "resource": "Resource",
    "system": "System",
    "domain": "Domain",
    "group": "Group",
    "user": "User",
    "location": "Location",
}


@dataclass(frozen=True)
class FieldError:
    """One validation failure: the path of the field at fault and what is wrong."""

    path: tuple[str | int, ...]
    message: str

    @property
    def dotted(self) -> str:
        """Return the path as ``spec.owner`` / ``metadata.links[0].url``."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(document)"


@dataclass(frozen=True)
class ValidEntity:
    """A document that passed validation, with its envelope parsed."""

    envelope: Envelope
    known_kind: bool


def validate_document(data: Any) -> ValidEntity | list[FieldError]:
    """Validate one YAML document; return the parsed entity or the list of field errors."""
    if not isinstance(data, dict):
        return [
            FieldError((), "a catalog document must be a mapping with apiVersion, kind, metadata")
        ]
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        return _errors(exc, ())
    kind_key = envelope.kind.lower()
    model = SPEC_MODELS.get(kind_key)
    if model is None:
        return ValidEntity(envelope, known_kind=False)
    if kind_key != "location" and envelope.spec is None:
        return [FieldError(("spec",), f"is required for kind {envelope.kind}")]
    try:
        model.model_validate(envelope.spec or {})
    except ValidationError as exc:
        return _errors(exc, ("spec",))
    return ValidEntity(envelope, known_kind=True)


def _errors(exc: ValidationError, prefix: tuple[str | int, ...]) -> list[FieldError]:
    found: list[FieldError] = []
    for error in exc.errors():
        path = prefix + tuple(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required"
        found.append(FieldError(path, message))
    return found
