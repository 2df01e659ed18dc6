"""Entity references in Backstage's short (``team-a``) and full (``group:default/team-a``) forms."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

DEFAULT_NAMESPACE = "default"


class RefError(ValueError):
    """Raised for a string that is not a valid entity reference."""


@dataclass(frozen=True)
class EntityRef:
    """A parsed reference; comparisons go through :attr:`key`, which is case-insensitive."""

    kind: str
    namespace: str
    name: str

    @cached_property  # computed once per reference: an import asks ~800,000 times
    def key(self) -> str:
        """Return the canonical lower-cased ``kind:namespace/name`` used as database key."""
        return f"{self.kind}:{self.namespace}/{self.name}".lower()

    def __str__(self) -> str:
        return f"{self.kind.lower()}:{self.namespace}/{self.name}"


def parse_ref(
    text: str, *, default_kind: str | None = None, default_namespace: str = DEFAULT_NAMESPACE
) -> EntityRef:
    """Parse ``[kind:][namespace/]name``, filling the defaults the referring field implies."""
    if not isinstance(text, str) or not text.strip():
        raise RefError("entity reference must be a non-empty string")
    return _parse(text, default_kind, default_namespace)


# A catalog names the same owners, systems and APIs over and over; references are
# immutable, so each distinct one is parsed once (errors are raised, never cached).
@lru_cache(maxsize=65_536)
def _parse(text: str, default_kind: str | None, default_namespace: str) -> EntityRef:
    raw = text.strip()
    kind: str | None = default_kind
    rest = raw
    colon, slash = raw.find(":"), raw.find("/")
    if colon != -1 and (slash == -1 or colon < slash):
        kind, rest = raw[:colon], raw[colon + 1 :]
        if not kind:
            raise RefError(f"entity reference {raw!r} has an empty kind")
    namespace = default_namespace
    if "/" in rest:
        namespace, rest = rest.split("/", 1)
        if not namespace:
            raise RefError(f"entity reference {raw!r} has an empty namespace")
    if not rest or ":" in rest or "/" in rest:
        raise RefError(f"entity reference {raw!r} is not of the form [kind:][namespace/]name")
    if kind is None:
        raise RefError(f"entity reference {raw!r} needs a kind (for example component:{raw})")
    return EntityRef(kind=kind, namespace=namespace, name=rest)


def ref_key(kind: str, namespace: str, name: str) -> str:
    """Return the canonical key of an entity given its parts."""
    return EntityRef(kind, namespace, name).key


def split_key(key: str) -> tuple[str, str, str]:
    """Split a canonical key back into ``(kind, namespace, name)``."""
    kind, rest = key.split(":", 1)
    namespace, name = rest.split("/", 1)
    return kind, namespace, name
