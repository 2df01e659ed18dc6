"""Generated Backstage catalogs for the catalog benchmark: realistic, related, reproducible."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.catalog_words import (
    API_TYPES,
    BUSINESS,
    COMPONENT_SUFFIX,
    COMPONENT_TYPES,
    DEPARTMENTS,
    FIRST,
    FUNCTION,
    LAST,
    LIFECYCLES,
    OBJECTS,
    QUALIFIERS,
    RESOURCE_TYPES,
    TAGS,
    VERBS,
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
