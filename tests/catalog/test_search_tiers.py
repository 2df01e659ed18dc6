"""A search's best-first order: its tiers, their pages and counts, on both databases.

The order is checked against a model written here from the stored rows: a query's words
must each start a word of the entity's name, title, tags, owner or description; tier 0
holds the entities whose name or title has every word and whose shown name starts with
the first, tier 1 the other names and titles, tier 2 the rest; each tier in shown-name
order, then by ref.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session, select

from portal.catalog import search_tiers
from portal.catalog.importer import import_locations
from portal.catalog.models import Entity
from portal.catalog.search import EntityQuery, list_entities
from portal.config import Settings
from tests.databases import PAGES_ON_SQLITE

_WORD = re.compile(r"[^\W_]+")
VOCABULARY = ["pay", "payments", "ledger", "api", "audit", "billing", "kafka", "risk", "store"]


def document(
    kind: str, name: str, *, title: str = "", tags: list[str] | None = None, **spec: str
) -> dict[str, Any]:
    """Return a catalog document; ``spec`` adds its fields (owner, type, lifecycle, system)."""
    metadata: dict[str, Any] = {"name": name}
    if title:
        metadata["title"] = title
    if tags:
        metadata["tags"] = tags
    if "description" in spec:
        metadata["description"] = spec.pop("description")
    return {"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def component(name: str, owner: str = "team-a", **fields: Any) -> dict[str, Any]:
    """Return a Component (a production service unless ``fields`` say otherwise)."""
    spec = {"type": "service", "lifecycle": "production", "owner": owner}
    return document("Component", name, **(spec | fields))


def load(session: Session, settings: Settings, folder: Path, documents: list[Any]) -> None:
    """Write ``documents`` to one file and import it, with no problem."""
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "catalog.yaml"
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")
    report = import_locations(session, [str(file)], settings)
    assert report.problems == []


def refs(session: Session, **query: Any) -> list[str]:
    """Return the refs of a search's page."""
    return [entity.ref for entity in list_entities(session, EntityQuery(**query)).items]


def _words(*texts: str | None) -> list[str]:
    return [word for text in texts for word in _WORD.findall((text or "").lower())]


def _has_all(tokens: list[str], words: list[str]) -> bool:
    return all(any(word.startswith(token) for word in words) for token in tokens)


def expected(session: Session, q: str, keep: Any = lambda entity: True) -> list[str]:
    """Return the refs of every match of ``q`` in the model's order, filtered by ``keep``."""
    tokens = _words(q)
    ranked = []
    for entity in session.exec(select(Entity)).all():
        every = _words(entity.name, entity.title, entity.tags_text, entity.owner_ref)
        if not keep(entity) or not _has_all(tokens, every + _words(entity.description)):
            continue
        shown = (entity.title or entity.name).lower()
        if not _has_all(tokens, _words(entity.name, entity.title)):
            tier = 2
        else:
            tier = 0 if shown.startswith(tokens[0]) else 1
        ranked.append((tier, shown, entity.ref))
    return [ref for _tier, _shown, ref in sorted(ranked)]


PAYMENTS_TEAM = "group:default/payments-team"
PAYMENTS = [
    component("payments"),
    component("payments-api", owner="team-b"),
    component("zeta", title="Payments Gateway"),
    component("acme-payments", lifecycle="experimental"),
    component("billing-payments-hub", system="shop"),
    component("ledger", tags=["payments", "pci"]),
    component("audit", description="Keeps payments for seven years."),
    component("billing", owner="payments-team"),
    component("kafka-bridge", type="library"),
    document("API", "payments-events", type="openapi", lifecycle="production", owner="team-a"),
    document("Group", "payments-team", type="team", children=[]),  # type: ignore[arg-type]
]


@pytest.fixture
def payments(session: Session, settings: Settings, tmp_path: Path) -> Session:
    load(session, settings, tmp_path / "payments", PAYMENTS)
    return session


def test_names_that_start_with_the_word_come_first_then_names_then_the_rest(
    payments: Session,
) -> None:
    assert refs(payments, q="payments", limit=50) == [
        # tier 0: the shown name starts with "payments", each in shown-name order
        "component:default/payments",
        "component:default/zeta",  # shown as "Payments Gateway"
        "component:default/payments-api",
        "api:default/payments-events",
        "group:default/payments-team",
        # tier 1: "payments" is a word of the name or title
        "component:default/acme-payments",
        "component:default/billing-payments-hub",
        # tier 2: the description, the owner's ref, a tag
        "component:default/audit",
        "component:default/billing",
        "component:default/ledger",
    ]
    assert refs(payments, q="payments", limit=50) == expected(payments, "payments")


def test_every_word_must_start_a_word_and_the_first_picks_tier_0(payments: Session) -> None:
    assert refs(payments, q="pay API", limit=50) == ["component:default/payments-api"]
    assert refs(payments, q="api pay", limit=50) == ["component:default/payments-api"]
    # "gate" only in the title: the title is a name
    assert refs(payments, q="gate", limit=50) == ["component:default/zeta"]
    assert refs(payments, q="pci pay", limit=50) == ["component:default/ledger"]
    assert refs(payments, q="zzz", limit=50) == []


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_pages_across_the_tiers_are_the_full_order_cut(payments: Session, limit: int) -> None:
    full = expected(payments, "pay")
    assert len(full) == 10
    pages = [
        list_entities(payments, EntityQuery(q="pay", limit=limit, offset=offset))
        for offset in range(0, len(full) + limit, limit)
    ]
    assert [entity.ref for page in pages for entity in page.items] == full
    assert {page.total for page in pages} == {len(full)}


def test_filters_narrow_every_tier_and_the_total(payments: Session) -> None:
    filters: list[tuple[dict[str, Any], Any]] = [
        ({"kind": "component"}, lambda e: e.kind_key == "component"),
        ({"kind": "API"}, lambda e: e.kind_key == "api"),
        ({"kind": "all"}, lambda e: True),
        ({"type": "library"}, lambda e: e.spec_type == "library"),
        ({"lifecycle": "experimental"}, lambda e: e.lifecycle == "experimental"),
        ({"owner": "team-b"}, lambda e: e.owner_ref == "group:default/team-b"),
        ({"owner": "group:default/payments-team"}, lambda e: e.owner_ref == PAYMENTS_TEAM),
        ({"system": "shop"}, lambda e: e.system_ref == "system:default/shop"),
        ({"tag": "pci"}, lambda e: "pci" in e.tags_text.split()),
        ({"include_orphans": False}, lambda e: not e.orphan),
        (
            {"owners": frozenset({"group:default/team-a", "group:default/team-b"})},
            lambda e: e.owner_ref in {"group:default/team-a", "group:default/team-b"},
        ),
        ({"owners": frozenset()}, lambda e: False),
        (
            {"kind": "component", "type": "service", "owner": "team-a"},
            lambda e: (
                (e.kind_key, e.spec_type, e.owner_ref)
                == ("component", "service", "group:default/team-a")
            ),
        ),
        ({"type": "no\x00such"}, lambda e: False),
    ]
    for query, keep in filters:
        for q in ("pay", "a", "payments team"):
            page = list_entities(payments, EntityQuery(q=q, limit=50, **query))
            want = expected(payments, q, keep)
            assert [entity.ref for entity in page.items] == want, (q, query)
            assert page.total == len(want), (q, query)


# SQLite only: PostgreSQL's planner chooses between walking and sorting itself.
@PAGES_ON_SQLITE
def test_walking_a_tier_and_sorting_it_give_the_same_pages(
    session: Session, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    load(session, settings, tmp_path / "many", random_catalog(rng, 120))
    queries = [
        EntityQuery(q=q, limit=7, offset=o) for q in ("pay", "a", "store risk") for o in (0, 5, 30)
    ]
    queries += [EntityQuery(q="pay", kind="component", owner="team-b", limit=5)]
    monkeypatch.setattr(search_tiers, "DENSE_FROM", 0)  # every tier walks the name index
    walked = [
        (p.total, [e.ref for e in p.items])
        for p in map(lambda q: list_entities(session, q), queries)
    ]
    monkeypatch.setattr(search_tiers, "DENSE_FROM", 10**9)  # every tier is sorted
    sorted_ = [
        (p.total, [e.ref for e in p.items])
        for p in map(lambda q: list_entities(session, q), queries)
    ]
    assert walked == sorted_
    assert any(total > 20 for total, _refs in walked)


def random_catalog(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Return ``count`` Components named, titled, tagged and described from VOCABULARY."""
    documents = []
    for index in range(count):
        name = "-".join(rng.sample(VOCABULARY, rng.randint(1, 3))) + f"-{index}"
        fields: dict[str, Any] = {
            "type": rng.choice(["service", "website", "library"]),
            "lifecycle": rng.choice(["production", "experimental"]),
        }
        if rng.random() < 0.3:
            fields["title"] = " ".join(word.title() for word in rng.sample(VOCABULARY, 2))
        if rng.random() < 0.5:
            fields["tags"] = rng.sample(VOCABULARY, 2)
        if rng.random() < 0.5:
            fields["description"] = " ".join(rng.sample(VOCABULARY, 3)) + "."
        documents.append(
            component(name, owner=rng.choice(["team-a", "team-b", "risk-team"]), **fields)
        )
    return documents


def test_random_catalogs_and_queries_follow_the_model(
    session: Session, settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(20261207)
    load(session, settings, tmp_path / "random", random_catalog(rng, 150))
    for _ in range(60):
        q = " ".join(
            word[: rng.randint(1, len(word))] for word in rng.sample(VOCABULARY, rng.randint(1, 2))
        )
        kind = rng.choice(["", "component"])
        lifecycle = rng.choice(["", "", "production"])
        keep = lambda e, lifecycle=lifecycle: not lifecycle or e.lifecycle == lifecycle  # noqa: E731
        want = expected(session, q, keep)
        limit = rng.choice([3, 10, 50])
        offset = rng.choice([0, 0, 2, 9])
        page = list_entities(
            session, EntityQuery(q=q, kind=kind, lifecycle=lifecycle, limit=limit, offset=offset)
        )
        assert [e.ref for e in page.items] == want[offset : offset + limit], q
        assert page.total == len(want), q
