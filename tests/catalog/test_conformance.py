"""Backstage's own example catalog imports with the counts and relations Backstage yields."""

from collections import Counter

import pytest
from sqlmodel import Session, select

from portal.catalog.importer import import_locations
from portal.catalog.models import Entity, Relation
from portal.catalog.store import relations_of
from portal.config import Settings
from tests.conftest import BACKSTAGE_EXAMPLES

ROOTS = [str(BACKSTAGE_EXAMPLES / "all.yaml"), str(BACKSTAGE_EXAMPLES / "acme-corp.yaml")]


@pytest.fixture
def imported(session: Session, settings: Settings) -> Session:
    if not BACKSTAGE_EXAMPLES.is_dir():
        pytest.fail(f"conformance data missing at {BACKSTAGE_EXAMPLES}")
    report = import_locations(session, ROOTS, settings)
    # Three APIs define themselves by a remote $text URL: stored as written, each reported
    # at its placeholder's line, never fetched.
    remote = [(p.source, p.line, p.field_path, p.entity_ref) for p in report.problems]
    assert remote == [
        (str(BACKSTAGE_EXAMPLES / "apis" / f"{name}-api.yaml"), line, "spec.definition", ref)
        for name, line, ref in [
            ("spotify", 17, "api:default/spotify"),
            ("wayback-archive", 11, "api:default/wayback-archive"),
            ("wayback-search", 11, "api:default/wayback-search"),
        ]
    ]
    assert all("is not fetched" in p.message for p in report.problems)
    assert report.sources_read == 49
    return session


def test_counts_per_kind(imported: Session) -> None:
    kinds = Counter(e.kind for e in imported.exec(select(Entity)))
    assert kinds == {
        "Component": 13,
        "API": 10,
        "System": 3,
        "Domain": 3,
        "Resource": 1,
        "Group": 8,
        "User": 17,
        "Location": 9,
        "AiResource": 3,
    }
    namespaces = Counter(e.namespace for e in imported.exec(select(Entity)))
    assert namespaces == {"default": 66, "development": 1}  # the README's total of 67


def test_unknown_kind_is_kept_verbatim(imported: Session) -> None:
    ai = imported.exec(select(Entity).where(Entity.kind_key == "airesource")).all()
    assert sorted(e.name for e in ai) == [
        "code-review-plugin",
        "frontend-design",
        "use-internal-apis",
    ]
    assert all(not e.known_kind for e in ai)
    plugin = next(e for e in ai if e.name == "code-review-plugin")
    assert plugin.document["spec"]["skills"] == [
        "airesource:default/typescript-best-practices",
        "airesource:default/security-review",
    ]


def test_two_guests_in_different_namespaces(imported: Session) -> None:
    guests = imported.exec(select(Entity).where(Entity.name == "guest")).all()
    assert sorted(e.ref for e in guests) == ["user:default/guest", "user:development/guest"]
    members = {
        r.target_ref
        for r in relations_of(imported, "group:default/team-a")
        if r.type == "hasMember"
    }
    assert {"user:default/guest", "user:development/guest"} <= members
    assert len(members) == 5


def has(session: Session, source: str, type_: str, target: str) -> bool:
    return (
        session.exec(
            select(Relation).where(
                Relation.source_ref == source, Relation.type == type_, Relation.target_ref == target
            )
        ).first()
        is not None
    )


@pytest.mark.parametrize(
    ("source", "type_", "target"),
    [
        ("component:default/artist-lookup", "ownedBy", "group:default/team-a"),
        ("group:default/team-a", "ownerOf", "component:default/artist-lookup"),
        ("component:default/artist-lookup", "partOf", "system:default/artist-engagement-portal"),
        ("component:default/artist-lookup", "dependsOn", "resource:default/artists-db"),
        ("resource:default/artists-db", "dependencyOf", "component:default/artist-lookup"),
        ("component:default/searcher", "ownedBy", "user:default/guest"),
        ("user:default/guest", "ownerOf", "component:default/searcher"),
        ("domain:default/playback", "ownedBy", "user:default/frank.tiernan"),
        ("user:development/guest", "memberOf", "group:default/team-a"),
        ("group:default/team-a", "childOf", "group:default/backstage"),
        ("group:default/backstage", "parentOf", "group:default/team-a"),
        ("group:default/acme-corp", "parentOf", "group:default/infrastructure"),
        (
            "component:default/wayback-archive-ingestion",
            "partOf",
            "component:default/wayback-archive",
        ),
        (
            "component:default/wayback-archive",
            "hasPart",
            "component:default/wayback-archive-ingestion",
        ),
        ("domain:default/artists", "partOf", "domain:default/audio"),
        ("system:default/audio-playback", "partOf", "domain:default/playback"),
        ("component:default/www-artist", "consumesApi", "component:default/artist-lookup"),
        ("component:default/artist-lookup", "apiConsumedBy", "component:default/www-artist"),
        ("api:default/petstore", "apiProvidedBy", "component:default/petstore"),
        ("component:default/petstore", "providesApi", "api:default/petstore"),
        ("domain:default/audio", "ownedBy", "group:default/acme-corp"),
    ],
)
def test_relations_backstage_would_compute(
    imported: Session, source: str, type_: str, target: str
) -> None:
    assert has(imported, source, type_, target)


def test_every_relation_target_resolves(imported: Session) -> None:
    refs = set(imported.exec(select(Entity.ref)).all())
    targets = set(imported.exec(select(Relation.target_ref)).all())
    assert targets - refs == set()


def test_relative_text_placeholder_is_resolved(imported: Session) -> None:
    webhook = imported.exec(
        select(Entity).where(Entity.ref == "api:default/petstore-webhook")
    ).one()
    assert isinstance(webhook.document["spec"]["definition"], str)
    assert "webhooks" in webhook.document["spec"]["definition"]
    spotify = imported.exec(select(Entity).where(Entity.ref == "api:default/spotify")).one()
    assert "$text" in spotify.document["spec"]["definition"]  # remote: never fetched


def test_reimport_is_idempotent(imported: Session, settings: Settings) -> None:
    before = imported.exec(select(Relation)).all()
    report = import_locations(imported, ROOTS, settings)
    assert (report.added, report.updated, report.orphaned) == (0, 0, 0)
    assert report.unchanged == 67
    assert len(imported.exec(select(Relation)).all()) == len(before)
