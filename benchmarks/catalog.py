"""Catalog benchmark (issue 2): import, search, list, entity page and API on 10,000 entities.

Run ``.venv/bin/python benchmarks/catalog.py`` (SQLite in a temp dir) or add
``--database-url postgresql://postgres@127.0.0.1:5432/test`` (a private schema is created
and dropped). Prints a table of figures and PASS/FAIL against the issue's targets.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from portal.app import create_app
from portal.catalog.importer import import_locations
from portal.catalog.models import ImportReport
from portal.catalog.search import EntityQuery, list_entities
from portal.config import Settings
from portal.db import make_engine, migrate

SEED = 20261123
IMPORT_TARGET_S = 3.0
SEARCH_P95_TARGET_MS = 25.0
PAGE_P95_TARGET_MS = 30.0

# --------------------------------------------------------------------------- vocabulary


def _words(text: str, separator: str | None = None) -> list[str]:
    return text.split(separator)


BUSINESS = _words(
    "payments checkout inventory search recommendation billing identity notification fraud "
    "ledger shipping catalog pricing analytics orders loyalty returns warehouse customer "
    "onboarding risk compliance reporting marketing support booking subscription invoice tax "
    "forecast telemetry observability air-quality anomaly rag embedding vector feature-store "
    "training inference scheduling geo media chat content partner settlement treasury audit "
    "consent "
)
FUNCTION = _words(
    "ledger gateway router engine indexer scorer detector monitor collector aggregator "
    "exporter importer sync resolver validator matcher planner optimizer publisher consumer "
    "scheduler tracker profile session cache store registry proxy classifier summarizer "
)
COMPONENT_SUFFIX = _words("service worker api ui job pipeline backend frontend")
COMPONENT_TYPES = _words(
    "service service service service service service website website library library ml-model "
    "pipeline "
)
LIFECYCLES = _words(
    "production production production production production production experimental "
    "experimental deprecated "
)
API_TYPES = _words("openapi openapi openapi openapi openapi openapi grpc grpc asyncapi graphql")
RESOURCE_TYPES = [
    (pair.split(":")[0], pair.split(":")[1])
    for pair in _words(
        "database:db database:postgres s3-bucket:bucket kafka-topic:topic redis:cache "
        "vector-db:vectors queue:queue gpu-pool:gpus"
    )
]
TAGS = _words(
    "python java go typescript rust kotlin grpc rest graphql kafka postgres redis ml llm gpu "
    "pci gdpr tier-1 tier-2 tier-3 batch streaming public internal fastapi spring react "
    "terraform "
)
FIRST = _words(
    "olivia liam emma noah amelia oliver sophia elijah ava james isabella lucas mia mateo "
    "charlotte ethan harper levi luna aiden camila kai aria leo nora ezra hazel wei yuki "
    "priya arjun fatima omar chloe hugo ines jonas lena marta pablo sven tomas zara amir "
    "breanna diego elena farah goran hana "
)
LAST = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez "
    "lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson "
    "white harris sanchez clark ramirez lewis robinson walker young allen king wright scott "
    "nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts "
    "davison kowalski novak schmidt muller rossi silva tanaka kim patel singh "
)
VERBS = _words(
    "Handles Computes Serves Stores Publishes Aggregates Validates Routes Scores Tracks "
    "Detects Indexes Streams Reconciles Forecasts "
)
OBJECTS = _words(
    "card payments|customer orders|stock levels|search results|product prices|fraud signals|"
    "shipping labels|invoices|user sessions|feature vectors|model predictions|sensor readings|"
    "air quality measurements|anomaly scores|chat transcripts|document embeddings|"
    "audit events|consent records|loyalty points|exchange rates|tax reports|support tickets|"
    "push notifications",
    "|",
)
QUALIFIERS = _words(
    "for the web shop|for mobile apps|in near real time|in nightly batches|for the EU region|"
    "for partners|with exactly-once delivery|behind the API gateway|for the data platform|"
    "for internal dashboards|with a 99.9% SLO",
    "|",
)
DEPARTMENTS = _words(
    "engineering data platform commerce finance-tech growth security ml-research "
    "customer-experience operations mobile infrastructure"
)


# --------------------------------------------------------------------------- generation


@dataclass
class Plan:
    """How many entities of each kind to generate."""

    domains: int
    systems: int
    groups: int
    users: int
    components: int
    apis: int
    resources: int

    @classmethod
    def for_total(cls, total: int) -> Plan:
        domains = max(2, round(total * 0.002))
        systems = max(3, round(total * 0.025))
        groups = max(len(DEPARTMENTS) + 3, round(total * 0.03))
        users = max(5, round(total * 0.25))
        apis = max(3, round(total * 0.15))
        resources = max(3, round(total * 0.14))
        components = total - domains - systems - groups - users - apis - resources
        return cls(domains, systems, groups, users, max(3, components), apis, resources)


@dataclass
class Catalog:
    """Generated documents, by file name (relative to the root folder)."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)  # kind key -> names
    teams: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(documents) for documents in self.files.values())


class Names:
    """Unique names per kind, built from realistic words with a numeric suffix on collision."""

    def __init__(self) -> None:
        self.used: dict[str, set[str]] = {}

    def take(self, kind: str, base: str) -> str:
        used = self.used.setdefault(kind, set())
        name = base[:60]
        number = 2
        while name in used:
            name = f"{base[:56]}-{number}"
            number += 1
        used.add(name)
        return name


def _entity(kind: str, name: str, metadata: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def _description(rng: random.Random) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}."


def _tags(rng: random.Random, low: int, high: int) -> list[str]:
    return rng.sample(TAGS, rng.randint(low, high))


def _org(rng: random.Random, plan: Plan, names: Names, catalog: Catalog) -> None:
    """Groups (organization > departments > teams) and users with memberOf."""
    groups: list[dict[str, Any]] = []
    org = _entity(
        "Group",
        names.take("group", "acme"),
        {"title": "ACME Corp", "description": "The whole company."},
        {"type": "organization", "children": [], "profile": {"displayName": "ACME Corp"}},
    )
    groups.append(org)
    departments: list[dict[str, Any]] = []
    for word in DEPARTMENTS:
        doc = _entity(
            "Group",
            names.take("group", word),
            {"title": word.replace("-", " ").title(), "description": _description(rng)},
            {"type": "department", "parent": "acme", "children": []},
        )
        org["spec"]["children"].append(doc["metadata"]["name"])
        departments.append(doc)
    groups.extend(departments)
    teams: list[str] = []
    for _ in range(plan.groups - len(groups)):
        department = rng.choice(departments)
        word = rng.choice(BUSINESS + FUNCTION)
        name = names.take("group", f"team-{word}")
        department["spec"]["children"].append(name)
        groups.append(
            _entity(
                "Group",
                name,
                {
                    "title": f"Team {word.replace('-', ' ').title()}",
                    "description": f"Owns {rng.choice(OBJECTS)} {rng.choice(QUALIFIERS)}.",
                    "tags": _tags(rng, 0, 2),
                    "links": [{"url": f"https://chat.example.com/{name}", "title": "Chat"}],
                },
                {
                    "type": "team",
                    "parent": department["metadata"]["name"],
                    "children": [],
                    "profile": {
                        "displayName": f"Team {word}",
                        "email": f"{name}@example.com",
                    },
                },
            )
        )
        teams.append(name)
    catalog.files["org/groups.yaml"] = groups
    catalog.teams = teams
    catalog.names["group"] = [group["metadata"]["name"] for group in groups]
    users: list[dict[str, Any]] = []
    for _ in range(plan.users):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = names.take("user", f"{first}.{last}")
        member_of = rng.sample(teams, 1 if rng.random() < 0.8 else 2)
        users.append(
            _entity(
                "User",
                name,
                {"description": f"{rng.choice(['Engineer', 'SRE', 'Data scientist', 'PM'])}."},
                {
                    "memberOf": member_of,
                    "profile": {
                        "displayName": f"{first.title()} {last.title()}",
                        "email": f"{name}@example.com",
                    },
                },
            )
        )
    for start in range(0, len(users), 250):
        catalog.files[f"org/users-{start // 250:03d}.yaml"] = users[start : start + 250]
    catalog.names["user"] = [user["metadata"]["name"] for user in users]


def _openapi(name: str, word: str) -> str:
    return (
        "openapi: 3.0.3\n"
        f"info:\n  title: {name}\n  version: 1.0.0\n"
        f"paths:\n  /{word}:\n    get:\n      summary: List {word}\n"
        "      responses:\n        '200':\n          description: OK\n"
    )


def _spread(rng: random.Random, total: int, buckets: int) -> list[int]:
    """Split ``total`` into ``buckets`` uneven, non-negative parts (some systems are big)."""
    weights = [rng.paretovariate(1.5) for _ in range(buckets)]
    scale = total / sum(weights)
    parts = [int(weight * scale) for weight in weights]
    for index in range(total - sum(parts)):
        parts[index % buckets] += 1
    return parts


def _systems(rng: random.Random, plan: Plan, names: Names, catalog: Catalog) -> None:
    """Domains, then one file per system with its components, APIs and resources."""
    domains = [
        _entity(
            "Domain",
            names.take("domain", word),
            {"title": word.replace("-", " ").title(), "description": _description(rng)},
            {"owner": rng.choice(catalog.teams)},
        )
        for word in rng.sample(BUSINESS, min(plan.domains, len(BUSINESS)))
    ]
    catalog.files["domains.yaml"] = domains
    domain_names = [domain["metadata"]["name"] for domain in domains]
    system_words = [rng.choice(BUSINESS) for _ in range(plan.systems)]
    system_names = [names.take("system", word) for word in system_words]
    api_counts = _spread(rng, plan.apis, plan.systems)
    component_counts = _spread(rng, plan.components, plan.systems)
    resource_counts = _spread(rng, plan.resources, plan.systems)
    # APIs are named first so that components anywhere can consume them.
    apis_of: list[list[str]] = []
    for index, word in enumerate(system_words):
        apis_of.append(
            [
                names.take("api", f"{word}-{rng.choice(FUNCTION)}-api")
                for _ in range(api_counts[index])
            ]
        )
    all_apis = [api for apis in apis_of for api in apis]
    components_of: list[list[str]] = []
    for index, word in enumerate(system_words):
        components_of.append(
            [
                names.take(
                    "component", f"{word}-{rng.choice(FUNCTION)}-{rng.choice(COMPONENT_SUFFIX)}"
                )
                for _ in range(component_counts[index])
            ]
        )
    all_components = [name for names_ in components_of for name in names_]
    for index, (word, system) in enumerate(zip(system_words, system_names, strict=True)):
        owner = rng.choice(catalog.teams)
        documents = [
            _entity(
                "System",
                system,
                {
                    "title": f"{word.replace('-', ' ').title()} platform",
                    "description": _description(rng),
                    "tags": _tags(rng, 0, 2),
                },
                {"owner": owner, "domain": rng.choice(domain_names)},
            )
        ]
        resources: list[str] = []
        for _ in range(resource_counts[index]):
            resource_type, noun = rng.choice(RESOURCE_TYPES)
            name = names.take("resource", f"{word}-{rng.choice(FUNCTION)}-{noun}")
            resources.append(name)
            documents.append(
                _entity(
                    "Resource",
                    name,
                    {"description": f"{resource_type} for {word}.", "tags": _tags(rng, 0, 2)},
                    {"type": resource_type, "owner": owner, "system": system},
                )
            )
        for api in apis_of[index]:
            api_type = rng.choice(API_TYPES)
            definition = _openapi(api, word) if api_type == "openapi" else f"{api_type} {api}"
            documents.append(
                _entity(
                    "API",
                    api,
                    {"description": _description(rng), "tags": _tags(rng, 1, 3)},
                    {
                        "type": api_type,
                        "lifecycle": rng.choice(LIFECYCLES),
                        "owner": owner if rng.random() < 0.8 else rng.choice(catalog.teams),
                        "system": system,
                        "definition": definition,
                    },
                )
            )
        for name in components_of[index]:
            spec: dict[str, Any] = {
                "type": rng.choice(COMPONENT_TYPES),
                "lifecycle": rng.choice(LIFECYCLES),
                "owner": owner if rng.random() < 0.85 else rng.choice(catalog.teams),
                "system": system,
            }
            own_apis = apis_of[index]
            if own_apis and rng.random() < 0.6:
                spec["providesApis"] = rng.sample(own_apis, min(len(own_apis), rng.randint(1, 2)))
            if rng.random() < 0.7:
                spec["consumesApis"] = rng.sample(all_apis, rng.randint(1, 3))
            depends = [f"resource:{r}" for r in rng.sample(resources, min(len(resources), 2))]
            depends += [f"component:{c}" for c in rng.sample(all_components, rng.randint(0, 2))]
            if depends:
                spec["dependsOn"] = depends
            documents.append(
                _entity(
                    "Component",
                    name,
                    {
                        "title": name.replace("-", " ").title(),
                        "description": _description(rng),
                        "tags": _tags(rng, 1, 4),
                        "annotations": {
                            "github.com/project-slug": f"acme/{name}",
                            "backstage.io/techdocs-ref": "dir:.",
                        },
                        "links": [
                            {"url": f"https://grafana.example.com/d/{name}", "title": "Dashboard"}
                        ],
                    },
                    spec,
                )
            )
        catalog.files[f"systems/{system}.yaml"] = documents
    catalog.names["domain"] = domain_names
    catalog.names["system"] = system_names
    catalog.names["component"] = all_components
    catalog.names["api"] = all_apis
    catalog.names["resource"] = [
        doc["metadata"]["name"]
        for docs in catalog.files.values()
        for doc in docs
        if doc["kind"] == "Resource"
    ]


def generate(total: int, seed: int) -> Catalog:
    rng = random.Random(seed)
    plan = Plan.for_total(total)
    names = Names()
    catalog = Catalog()
    _org(rng, plan, names, catalog)
    _systems(rng, plan, names, catalog)
    return catalog


def write_catalog(catalog: Catalog, folder: Path) -> Path:
    """Write every file as a multi-document YAML stream; return the root Location file."""
    for relative, documents in catalog.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
    root = folder / "catalog-info.yaml"
    location = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Location",
        "metadata": {"name": "benchmark-root", "description": "Every generated file."},
        "spec": {"type": "file", "targets": [f"./{relative}" for relative in catalog.files]},
    }
    root.write_text(yaml.safe_dump(location, sort_keys=False), encoding="utf-8")
    return root


# --------------------------------------------------------------------------- workloads


def search_queries(rng: random.Random, catalog: Catalog, count: int) -> list[EntityQuery]:
    """1-2 word queries people type, a third of them with a filter."""
    teams = catalog.teams
    makers: list[Callable[[], EntityQuery]] = [
        lambda: EntityQuery(q=rng.choice(BUSINESS).split("-")[0]),
        lambda: EntityQuery(q=rng.choice(FUNCTION)),
        lambda: EntityQuery(q=f"{rng.choice(BUSINESS).split('-')[0]} {rng.choice(FUNCTION)}"),
        lambda: EntityQuery(q=rng.choice(TAGS)),
        lambda: EntityQuery(q=rng.choice(FIRST)),
        lambda: EntityQuery(q=f"{rng.choice(FIRST)} {rng.choice(LAST)}"),
        lambda: EntityQuery(q=rng.choice(BUSINESS)[:4]),  # a prefix, as typed live
        lambda: EntityQuery(q=rng.choice(["api", "service", "worker", "pipeline"])),
        lambda: EntityQuery(q=rng.choice(BUSINESS).split("-")[0], kind="component"),
        lambda: EntityQuery(q=rng.choice(FUNCTION), kind="api", lifecycle="production"),
        lambda: EntityQuery(q=rng.choice(BUSINESS).split("-")[0], owner=rng.choice(teams)),
        lambda: EntityQuery(q=rng.choice(TAGS), kind="component", type="service"),
    ]
    return [rng.choice(makers)() for _ in range(count)]


def list_queries(rng: random.Random, catalog: Catalog, count: int) -> list[EntityQuery]:
    """Browsing without text: filters, a sort column, and a page further down."""
    teams, systems = catalog.teams, catalog.names["system"]
    sorts = ["", "name", "kind", "owner", "type", "lifecycle", "updated"]

    def one() -> EntityQuery:
        query = EntityQuery(sort=rng.choice(sorts), desc=rng.random() < 0.3)
        choice = rng.randrange(6)
        if choice == 0:
            query.kind = "component"
        elif choice == 1:
            query.kind, query.lifecycle = "api", rng.choice(LIFECYCLES)
        elif choice == 2:
            query.owner = rng.choice(teams)
        elif choice == 3:
            query.system = rng.choice(systems)
        elif choice == 4:
            query.tag = rng.choice(TAGS)
        query.offset = rng.choice([0, 0, 25, 50, 100, 250, 1000])
        return query

    return [one() for _ in range(count)]


# --------------------------------------------------------------------------- measuring


@dataclass
class Row:
    name: str
    cells: tuple[str, str, str]  # p50, p95, max (or one value in the p95 column)
    target: str = ""
    verdict: str = ""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_row(name: str, samples: list[float], target_ms: float | None = None) -> Row:
    p50, p95 = percentile(samples, 0.50), percentile(samples, 0.95)
    row = Row(name, (f"{p50:.2f} ms", f"{p95:.2f} ms", f"{max(samples):.2f} ms"))
    if target_ms is not None:
        row.target = f"p95 < {target_ms:g} ms"
        row.verdict = "PASS" if p95 < target_ms else "FAIL"
    return row


def print_table(rows: list[Row]) -> None:
    headers = ("measure", "p50", "p95", "max", "target", "result")
    lines = [(row.name, *row.cells, row.target, row.verdict) for row in rows]
    widths = [max(len(line[i]) for line in [headers, *lines]) for i in range(len(headers))]
    for index, line in enumerate([headers, *lines]):
        cells = [
            cell.ljust(width) if column in (0, 4, 5) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))


def machine() -> str:
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        memory = f", {total_kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{platform.machine()}, {os.cpu_count()} cores{memory}; {platform.platform()}; "
        f"Python {platform.python_version()}; SQLite library {sqlite3.sqlite_version}"
    )


def run_queries(engine: Engine, queries: list[EntityQuery]) -> tuple[list[float], int]:
    """Run each query in its own session (as a request would); return latencies and hits."""
    samples: list[float] = []
    hits = 0
    for query in queries[: min(10, len(queries))]:  # warm caches and prepared statements
        with Session(engine) as session:
            list_entities(session, query)
    for query in queries:
        with Session(engine) as session:
            start = time.perf_counter()
            page = list_entities(session, query)
            samples.append((time.perf_counter() - start) * 1000)
        hits += page.total > 0
    return samples, hits


def http_latencies(client: TestClient, paths: list[str]) -> list[float]:
    for path in paths[: min(10, len(paths))]:
        client.get(path)
    samples: list[float] = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")
    return samples


# --------------------------------------------------------------------------- databases


@contextmanager
def database(url: str | None) -> Iterator[str | None]:
    """Yield the URL to use: as given for SQLite (None: the data dir), else a private schema."""
    if url is None or url.startswith("sqlite"):
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    plain = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql://", url)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in plain else "?"
    try:
        yield f"{plain}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def server_version(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            return f"SQLite {connection.execute(text('select sqlite_version()')).scalar_one()}"
        version = str(connection.execute(text("show server_version")).scalar_one())
        return f"PostgreSQL {version.split()[0]}"


def describe_import(report: ImportReport) -> str:
    parts = ", ".join(f"{kind} {count}" for kind, count in sorted(report.by_kind.items()))
    return (
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"orphaned {report.orphaned}, problems {len(report.problems)} ({parts})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a fresh SQLite file in a temp dir; a postgresql:// URL gets a "
        "private schema that is dropped afterwards",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed + 1)

    with tempfile.TemporaryDirectory(prefix="catalog-bench-") as temp:
        folder = Path(temp)
        catalog = generate(args.entities, args.seed)
        root = write_catalog(catalog, folder / "catalog")
        size = sum(path.stat().st_size for path in (folder / "catalog").rglob("*.yaml"))
        entity_count, file_count = catalog.count, len(catalog.files)
        print(
            f"generated {entity_count} entities in {file_count} files "
            f"({size / 1e6:.1f} MB) + a root Location",
            flush=True,
        )
        catalog.files.clear()  # only the names are needed from here on
        gc.collect()
        with database(args.database_url) as url:
            settings = Settings(
                data_dir=folder / "var",
                database_url=url,
                catalog_paths=[],
                secret_key="benchmark-secret-key",
            )
            engine = make_engine(settings)
            migrate(engine)
            version = server_version(engine)
            rows: list[Row] = []

            with Session(engine) as session:
                start = time.perf_counter()
                first = import_locations(session, [str(root)], settings)
                first_s = time.perf_counter() - start
            with Session(engine) as session:
                start = time.perf_counter()
                second = import_locations(session, [str(root)], settings)
                second_s = time.perf_counter() - start
            print(f"import:    {describe_import(first)}", flush=True)
            print(f"re-import: {describe_import(second)}", flush=True)
            for problem in first.problems[:5]:
                print(f"  problem: {problem}")
            imported = first.added == entity_count + 1 and not first.problems
            rows.append(
                Row(
                    f"import {entity_count} entities, fresh database",
                    ("", f"{first_s:.2f} s", ""),
                    f"< {IMPORT_TARGET_S:g} s",
                    "PASS" if first_s < IMPORT_TARGET_S and imported else "FAIL",
                )
            )
            unchanged = second.unchanged == entity_count + 1
            rows.append(
                Row(
                    "re-import, nothing changed",
                    ("", f"{second_s:.2f} s", ""),
                    verdict="" if unchanged else "FAIL (changes seen)",
                )
            )

            searches = search_queries(rng, catalog, args.queries)
            samples, hits = run_queries(engine, searches)
            rows.append(
                latency_row(
                    f"search: list_entities(q=...), {hits}/{len(searches)} with hits",
                    samples,
                    SEARCH_P95_TARGET_MS,
                )
            )
            samples, _ = run_queries(engine, list_queries(rng, catalog, args.queries))
            rows.append(latency_row("list: filters + sort + offset, no q", samples))

            components = catalog.names["component"]
            picks = [rng.choice(components) for _ in range(args.queries)]
            everything = [(kind, name) for kind, names in catalog.names.items() for name in names]
            mixed = [rng.choice(everything) for _ in range(args.queries)]
            api_paths = [f"/api/catalog/entities?{_query_string(q)}" for q in searches]
            list_paths = [f"/catalog?{_query_string(q)}" for q in searches]
            with TestClient(create_app(settings)) as client:
                samples = http_latencies(
                    client, [f"/catalog/component/default/{name}" for name in picks]
                )
                rows.append(
                    latency_row(
                        "GET /catalog/component/default/<name>", samples, PAGE_P95_TARGET_MS
                    )
                )
                samples = http_latencies(
                    client, [f"/catalog/{kind}/default/{name}" for kind, name in mixed]
                )
                rows.append(latency_row("GET /catalog/<any kind>/default/<name>", samples))
                samples = http_latencies(client, api_paths)
                rows.append(latency_row("GET /api/catalog/entities?q=...", samples))
                samples = http_latencies(client, list_paths)
                rows.append(latency_row("GET /catalog?q=... (list page, facets)", samples))
            engine.dispose()

    print()
    print(f"machine:  {machine()}")
    print(f"database: {version}")
    print(
        f"catalog:  {entity_count} entities in {file_count} files + a root Location; "
        f"{args.queries} samples per latency row; seed {args.seed}"
    )
    print()
    print_table(rows)
    failed = [row.name for row in rows if row.verdict.startswith("FAIL")]
    print()
    print("all targets met" if not failed else f"targets missed: {'; '.join(failed)}")
    return 1 if failed else 0


def _query_string(query: EntityQuery) -> str:
    return urlencode(query.params())


if __name__ == "__main__":
    sys.exit(main())
