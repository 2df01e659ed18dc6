"""How the catalog pages name entities: the title (else the name) with a kind, never a raw ref.

One rule for every page: an entity is shown by ``metadata.title``, falling back to its
name; lists sort by what they show (:func:`display_sort_key` and its SQL twin in
:mod:`portal.catalog.search`). A reference to something the catalog does not hold is
shown as the reference itself, marked as not in the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from portal.catalog.facets import remembered, stored_owners
from portal.catalog.models import Entity
from portal.catalog.refs import split_key
from portal.catalog.relations import RELATION_LABELS
from portal.catalog.store import RelationView, relations_of

_CHUNK = 500
_TABLE = SQLModel.metadata.tables[Entity.__tablename__].c
# Relations that a group page lists in cards of their own, so the relation list skips them.
_OWN_CARDS = {"group": frozenset({"hasMember", "ownerOf"})}
_TYPE_ORDER = {type_: index for index, type_ in enumerate(RELATION_LABELS)}
# A ref only holds the lower-cased kind; the core kinds are badged as Backstage spells them.
_KIND_NAMES = {
    name.lower(): name
    for name in ("Component", "API", "Resource", "System", "Domain", "Group", "User", "Location")
}


def display_name(title: str | None, name: str) -> str:
    """Return what the pages show for an entity: its title, else its name."""
    return title or name


def display_sort_key(label: str) -> str:
    """Return the key lists sort a shown name by (case-insensitive, like the SQL ``lower``)."""
    return label.lower()


@dataclass(frozen=True)
class EntityLink:
    """A reference as a page shows it: a label, a kind badge and a link when it resolves."""

    ref: str
    label: str
    kind: str
    url: str | None
    spec_type: str | None = None
    profile_name: str | None = None

    @property
    def namespace(self) -> str:
        """Return the namespace of the reference (pages name it when it is not ``default``)."""
        return split_key(self.ref)[1]

    @property
    def found(self) -> bool:
        """Return True when the catalog holds the entity."""
        return self.url is not None


def _not_in_catalog(ref: str) -> EntityLink:
    kind = split_key(ref)[0]
    return EntityLink(ref=ref, label=ref, kind=_KIND_NAMES.get(kind, kind), url=None)


def entity_link(ref: str, entity: Entity | None) -> EntityLink:
    """Return how a page shows ``ref``, given the stored entity (None: not in the catalog)."""
    if entity is None:
        return _not_in_catalog(ref)
    profile = (entity.document.get("spec") or {}).get("profile")
    shown = profile.get("displayName") if isinstance(profile, dict) else None
    return EntityLink(
        ref=ref,
        label=display_name(entity.title, entity.name),
        kind=entity.kind,
        url=f"/catalog/{entity.kind_key}/{entity.namespace}/{entity.name}",
        spec_type=entity.spec_type,
        profile_name=shown if isinstance(shown, str) and shown else None,
    )


def links_for(session: Session, refs: Iterable[str]) -> dict[str, EntityLink]:
    """Return the link of every ref, reading the entities that exist in one query per 500."""
    wanted = sorted({ref for ref in refs if ref})
    rows: dict[str, tuple[str, str, str, str, str | None, str | None]] = {}
    for start in range(0, len(wanted), _CHUNK):
        statement = sa_select(
            _TABLE.ref,
            _TABLE.kind,
            _TABLE.kind_key,
            _TABLE.namespace,
            _TABLE.name,
            _TABLE.title,
            _TABLE.spec_type,
        ).where(_TABLE.ref.in_(wanted[start : start + _CHUNK]))
        for ref, kind, kind_key, namespace, name, title, spec_type in session.execute(statement):
            rows[ref] = (kind, kind_key, namespace, name, title, spec_type)
    links: dict[str, EntityLink] = {}
    for ref in wanted:
        if ref not in rows:
            links[ref] = _not_in_catalog(ref)
            continue
        kind, kind_key, namespace, name, title, spec_type = rows[ref]
        links[ref] = EntityLink(
            ref=ref,
            label=display_name(title, name),
            kind=kind,
            url=f"/catalog/{kind_key}/{namespace}/{name}",
            spec_type=spec_type,
        )
    return links


def sorted_links(links: Iterable[EntityLink]) -> list[EntityLink]:
    """Return links in the order a reader expects: by what they show, then by ref."""
    return sorted(links, key=lambda link: (display_sort_key(link.label), link.ref))


@dataclass(frozen=True)
class RelationSection:
    """One kind of relation on an entity page, with its targets as links."""

    type: str
    label: str
    links: list[EntityLink]


def relation_sections(
    entity: Entity, views: Sequence[RelationView]
) -> tuple[list[RelationSection], dict[str, list[EntityLink]]]:
    """Group an entity's relations for its page, each shown once.

    Returns the sections of the relation list and, by type, every relation's links (what
    the cards of a group page read). The list leaves out what the page already shows
    elsewhere: a group's members and what it owns (cards of their own), and the owner and
    system of the About facts.
    """
    by_type: dict[str, list[EntityLink]] = {}
    for view in views:
        by_type.setdefault(view.type, []).append(entity_link(view.target_ref, view.target))
    by_type = {type_: sorted_links(links) for type_, links in by_type.items()}
    skipped = _OWN_CARDS.get(entity.kind_key, frozenset())
    in_about = {("ownedBy", entity.owner_ref), ("partOf", entity.system_ref)}
    sections: list[RelationSection] = []
    for type_, links in sorted(
        by_type.items(), key=lambda item: (_TYPE_ORDER.get(item[0], len(_TYPE_ORDER)), item[0])
    ):
        listed = [link for link in links if (type_, link.ref) not in in_about]
        if type_ not in skipped and listed:
            sections.append(RelationSection(type_, RELATION_LABELS.get(type_, type_), listed))
    return sections, by_type


@dataclass(frozen=True)
class OwnerOption:
    """An option of the owner filter: the full ref as value and tooltip, a readable label."""

    value: str
    label: str
    kind: str


def owner_options(session: Session) -> list[tuple[str, list[OwnerOption]]]:
    """Return the owner filter's options, labelled like the pages show owners.

    They come from the import's facet table (and are shared between requests until the
    next import changes it: read-only). An owner the catalog does not hold is labelled by
    its name (the ref stays the value); labels that two owners share get the ref added, so
    every option can be told apart. They come grouped by kind, in order, as the select
    shows them (grouped once, not on every request: 3,000 owners at 100,000 entities).
    """
    return remembered(
        session,
        "owner options",
        lambda: [
            (kind, list(options))
            for kind, options in groupby(_owner_options(session), key=lambda o: o.kind)
        ],
    )


def _owner_options(session: Session) -> list[OwnerOption]:
    named: dict[str, tuple[str, str | None]] = {}
    for owner in stored_owners(session):
        if owner.found and owner.kind and owner.name:
            named[owner.ref] = (owner.kind, display_name(owner.title, owner.name))
        else:
            named[owner.ref] = (_not_in_catalog(owner.ref).kind, None)
    return _options(named)


def _options(named: dict[str, tuple[str, str | None]]) -> list[OwnerOption]:
    """Label owners given ``ref -> (kind, shown name or None when not in the catalog)``."""
    labels = {ref: label or split_key(ref)[2] for ref, (_kind, label) in named.items()}
    counts: dict[str, int] = {}
    for label in labels.values():
        counts[label.lower()] = counts.get(label.lower(), 0) + 1
    options = [
        OwnerOption(ref, label if counts[label.lower()] == 1 else f"{label} ({ref})", named[ref][0])
        for ref, label in labels.items()
    ]
    return sorted(
        options, key=lambda option: (option.kind, display_sort_key(option.label), option.value)
    )


@dataclass(frozen=True)
class EntityPageView:
    """The relations of an entity page, each target shown by title with its kind."""

    sections: list[RelationSection]
    by_type: dict[str, list[EntityLink]]
    owner: EntityLink | None
    system: EntityLink | None


def entity_page_view(session: Session, entity: Entity) -> EntityPageView:
    """Return the entity's relations as links: two queries, whatever their number."""
    sections, by_type = relation_sections(entity, relations_of(session, entity.ref))
    known = {link.ref: link for links in by_type.values() for link in links}
    facts = [ref for ref in (entity.owner_ref, entity.system_ref) if ref]
    missing = [ref for ref in facts if ref not in known]
    if missing:  # relations always hold them; this only guards a catalog mid-import
        known.update(links_for(session, missing))
    return EntityPageView(
        sections=sections,
        by_type=by_type,
        owner=known.get(entity.owner_ref) if entity.owner_ref else None,
        system=known.get(entity.system_ref) if entity.system_ref else None,
    )


@dataclass(frozen=True)
class ListView:
    """What the list page shows besides the entities: owners as links, filter options."""

    owners: dict[str, EntityLink]
    owner_options: list[tuple[str, list[OwnerOption]]]  # by kind, kinds in order
    kinds: list[str]


def list_view(session: Session, items: Sequence[Entity], facets: dict[str, list[str]]) -> ListView:
    """Return the owners of one page of entities and the filter options, one query each.

    The owner options come from the import's facet table, so they hold every owner; the
    ``owner`` values of ``facets`` are those same refs.
    """
    kinds = facets.get("kind", [])
    if not any(kind.lower() == "component" for kind in kinds):
        kinds = sorted([*kinds, "Component"])  # the default filter is always offered
    return ListView(
        owners=links_for(session, (entity.owner_ref for entity in items if entity.owner_ref)),
        owner_options=owner_options(session),
        kinds=kinds,
    )
