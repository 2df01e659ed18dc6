"""What a Flux cluster applies, read from a change's tree: its objects, sources and folders.

The ``flux wiring`` check (:mod:`portal.review.flux_wiring`) needs three readings of the
GitOps tree that Flux itself makes at run time: the objects of a cluster's root folder
``clusters/<env>/`` (with the line of each, for findings), which repository folder a Flux
Kustomization's ``spec.path`` names through its source, and which manifest files a folder
applies (following ``kustomization.yaml`` resources the way kustomize does, and for a
folder without one generating it the way Flux does). Nothing is fetched: a source outside
this repository is reported as unreadable, never guessed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pathspec

from portal.catalog.parse import read_yaml_stream
from portal.integrations.gitops import GitOpsRepo
from portal.integrations.gitops_tree import TreeFiles, read_files
from portal.review.collisions import FLUX_NAMESPACE, FLUX_SOURCE, is_kustomize_config
from portal.yaml_source import YamlDocument

SOURCEIGNORE = ".sourceignore"
KUSTOMIZATION_GROUP = "kustomize.toolkit.fluxcd.io"
ARTIFACT_GENERATOR_GROUP = "source.extensions.fluxcd.io"
_KUSTOMIZE_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_YAML = (".yaml", ".yml")


def flux_tree(repo: GitOpsRepo, commit: str) -> TreeFiles:
    """Read what the flux wiring check needs at ``commit``: the whole tree's manifests.

    Every folder a Kustomization may name (``services/``, ``apps/``, ``infrastructure/``)
    and the root ``.sourceignore``; YAML only, as a folder is judged by its manifests.
    """
    return read_files(repo, commit, (), suffixes=(*_YAML, SOURCEIGNORE))


@dataclass(frozen=True)
class ClusterObject:
    """One object of a cluster's root folder, with its file and YAML document (for lines)."""

    file: str
    document: YamlDocument

    @property
    def data(self) -> Mapping[str, Any]:
        """The object itself."""
        data = self.document.data
        return data if isinstance(data, Mapping) else {}

    @property
    def name(self) -> str:
        """``metadata.name``, empty when missing."""
        return str(_mapping(self.data.get("metadata")).get("name") or "")

    @property
    def namespace(self) -> str:
        """``metadata.namespace``; Flux's own namespace when left out (as bootstrap applies)."""
        return str(_mapping(self.data.get("metadata")).get("namespace") or FLUX_NAMESPACE)

    @property
    def spec(self) -> Mapping[str, Any]:
        """``spec``, empty when missing."""
        return _mapping(self.data.get("spec"))

    def depends_on(self) -> list[tuple[int, str, str | None]]:
        """Return each ``spec.dependsOn`` entry: its index, name and namespace (None: unnamed).

        What an unnamed namespace means is the caller's: a Kustomization's own namespace, a
        HelmRelease's own (which has none when its metadata names none).
        """
        found = []
        for index, entry in enumerate(map(_mapping, _sequence(self.spec.get("dependsOn")))):
            named = entry.get("namespace")
            found.append((index, str(entry.get("name") or ""), str(named) if named else None))
        return found

    def where(self, *keys: str | int) -> str:
        """Name the file and the line of the field at ``keys``, e.g. ``a.yaml line 12``."""
        return f"{self.file} line {self.document.line_of(keys)}"

    def is_a(self, group: str, kind: str) -> bool:
        """Tell whether the object is of ``kind`` in API ``group`` (any version)."""
        api_version = str(self.data.get("apiVersion") or "")
        return api_version.rpartition("/")[0] == group and self.data.get("kind") == kind


@dataclass
class Cluster:
    """The root folder ``clusters/<env>/`` of one cluster, read from a change's tree."""

    env: str
    objects: list[ClusterObject] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, why unreadable)

    @property
    def root(self) -> str:
        """The cluster's folder in the repository."""
        return f"clusters/{self.env}"

    def kustomizations(self) -> list[ClusterObject]:
        """Return the Flux Kustomizations defined in the cluster's folder."""
        return [obj for obj in self.objects if obj.is_a(KUSTOMIZATION_GROUP, "Kustomization")]


def read_cluster(env: str, files: Mapping[str, bytes]) -> Cluster:
    """Read every object of ``clusters/<env>/`` (as Flux's root Kustomization takes them)."""
    cluster = Cluster(env)
    for path in sorted(files):
        if not path.startswith(f"{cluster.root}/") or not path.endswith(_YAML):
            continue
        try:
            text = files[path].decode("utf-8")
        except UnicodeDecodeError as error:
            cluster.problems.append((path, f"not UTF-8 text ({error.reason})"))
            continue
        result = read_yaml_stream(text)
        if result.error is not None:
            line = f" (line {result.error_line})" if result.error_line else ""
            cluster.problems.append((path, f"{result.error}{line}"))
        for document in result.documents:
            data = document.data
            if isinstance(data, dict) and not is_kustomize_config(path, data):
                cluster.objects.append(ClusterObject(path, document))
    return cluster


def ignore_spec(files: Mapping[str, bytes]) -> tuple[pathspec.GitIgnoreSpec, list[str]]:
    """Return the repository's ``.sourceignore`` as a matcher, and its lines (for findings)."""
    lines = files.get(SOURCEIGNORE, b"").decode("utf-8", errors="replace").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines), lines


def excluded_by(
    spec: pathspec.GitIgnoreSpec, lines: list[str], paths: Iterable[str]
) -> tuple[str, int] | None:
    """Return the ``.sourceignore`` pattern and line excluding every one of ``paths``, or None.

    None also when ``paths`` is empty: a folder with nothing in it is reported as missing.
    """
    patterns: list[str] = []
    for path in paths:
        result = spec.check_file(path)
        if not result.include or result.index is None:
            return None  # one manifest reaches the artifact: the folder is there
        patterns.append(str(spec.patterns[result.index].pattern))
    if not patterns:
        return None
    stripped = [line.strip() for line in lines]
    return patterns[0], stripped.index(patterns[0]) + 1 if patterns[0] in stripped else 0


def normalised(raw: object) -> str | None:
    """Normalise a ``spec.path`` to a repository path (``.`` for the root); None: it leaves."""
    # Flux reads spec.path from the root of the source, with or without a leading slash.
    text = raw.strip().lstrip("/") if isinstance(raw, str) else ""
    path = posixpath.normpath(text or ".")
    if path == ".." or path.startswith("../"):
        return None
    return path


def files_under(files: Iterable[str], folder: str) -> list[str]:
    """Return the files of ``files`` inside ``folder`` (every file for the root ``.``)."""
    if folder == ".":
        return sorted(files)
    return sorted(path for path in files if path.startswith(f"{folder}/"))


def artifact_folders(cluster: Cluster) -> dict[str, list[tuple[str, str]]]:
    """Map each ExternalArtifact an ArtifactGenerator makes from this repository to its copies.

    Each copy is ``(folder in the artifact, folder in the repository)``, read from the
    ``from: "@<alias>/<folder>/**"`` and ``to: "@artifact/<folder>/"`` rules whose alias is
    the cluster's own ``flux-system`` GitRepository. Other copy rules are left out: a path
    they would serve is reported as unreadable.
    """
    artifacts: dict[str, list[tuple[str, str]]] = {}
    for generator in cluster.objects:
        if not generator.is_a(ARTIFACT_GENERATOR_GROUP, "ArtifactGenerator"):
            continue
        aliases = {
            str(source.get("alias"))
            for source in map(_mapping, _sequence(generator.spec.get("sources")))
            if source.get("kind") == "GitRepository" and source.get("name") == FLUX_SOURCE
        }
        for artifact in map(_mapping, _sequence(generator.spec.get("artifacts"))):
            copies = artifacts.setdefault(str(artifact.get("name")), [])
            for copy in map(_mapping, _sequence(artifact.get("copy"))):
                source, target = str(copy.get("from") or ""), str(copy.get("to") or "")
                alias, _, folder = source.partition("/")
                if alias.removeprefix("@") not in aliases or not folder.endswith("**"):
                    continue
                into = target.removeprefix("@artifact").strip("/") or "."
                copies.append((into, folder.removesuffix("**").strip("/") or "."))
    return artifacts


def repository_folder(
    kustomization: ClusterObject, artifacts: Mapping[str, list[tuple[str, str]]]
) -> str | None:
    """Return the repository folder a Kustomization applies; None: its source is elsewhere."""
    source = _mapping(kustomization.spec.get("sourceRef"))
    path = normalised(kustomization.spec.get("path"))
    if path is None:
        return None
    kind = source.get("kind", "GitRepository")
    if kind == "GitRepository" and source.get("name") == FLUX_SOURCE:
        return path
    if kind != "ExternalArtifact":
        return None
    for into, folder in artifacts.get(str(source.get("name")), []):
        if into == ".":
            return posixpath.normpath(posixpath.join(folder, path))
        if path == into or path.startswith(f"{into}/"):
            return posixpath.normpath(posixpath.join(folder, path[len(into) :].lstrip("/")))
    return None


def applied_files(
    files: Mapping[str, bytes], folder: str, too_large: Collection[str] = ()
) -> tuple[list[str], list[str]]:
    """Return the manifest files a kustomize build of ``folder`` reads, and those too large.

    Resources are followed from each ``kustomization.yaml``; a folder without one gives
    every YAML file below it, as Flux generates one (see :func:`applied`). Remote resources
    (URLs) are left out: they are not in this tree.
    """
    found = applied(files, folder, too_large)
    return found.files, found.too_large


@dataclass(frozen=True)
class Applied:
    """What one Flux Kustomization's build of a folder reads: files, folders, unread files."""

    files: list[str]
    folders: frozenset[str]  # every folder built as a kustomization (given or generated)
    too_large: list[str]


def kustomization_file(files: Collection[str], folder: str) -> str | None:
    """Return the ``kustomization.yaml`` (or ``.yml``, ``Kustomization``) of ``folder``."""
    return next(
        (f"{folder}/{name}" for name in _KUSTOMIZE_FILES if f"{folder}/{name}" in files), None
    )


def applied(files: Mapping[str, bytes], folder: str, too_large: Collection[str] = ()) -> Applied:
    """Follow a kustomize build of ``folder`` through the tree the way Flux runs it.

    A folder with a ``kustomization.yaml`` gives its ``resources`` and ``components``
    (files, or folders built in turn). For a folder without one, Flux's kustomize-controller
    generates one: every YAML file below it, except that a subfolder with its own
    ``kustomization.yaml`` is built as a whole instead of being descended into.
    """
    read: list[str] = []
    unread: list[str] = []
    seen: set[str] = set()
    pending = [posixpath.normpath(folder)]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        config = kustomization_file(files, current)
        if config is None:
            nested = _nested_kustomizations(files, current)
            pending += nested
            read += [
                path
                for path in files_under(files, current)
                if path.endswith(_YAML) and not _inside(path, nested)
            ]
            unread += [
                path for path in files_under(too_large, current) if not _inside(path, nested)
            ]
            continue
        documents = read_yaml_stream(files[config].decode("utf-8", errors="replace")).documents
        data = _mapping(documents[0].data if documents else None)
        for entry in (*_sequence(data.get("resources")), *_sequence(data.get("components"))):
            if not isinstance(entry, str) or "://" in entry:
                continue
            target = posixpath.normpath(posixpath.join(current, entry))
            if target in files:
                read.append(target)
            elif target in too_large:
                unread.append(target)
            else:
                pending.append(target)
    return Applied(read, frozenset(seen), unread)


def _nested_kustomizations(files: Collection[str], folder: str) -> list[str]:
    """Return the topmost subfolders of ``folder`` that have their own kustomization file."""
    configs = sorted(
        posixpath.dirname(path)
        for path in files_under(files, folder)
        if posixpath.basename(path) in _KUSTOMIZE_FILES and posixpath.dirname(path) != folder
    )
    topmost: list[str] = []
    for candidate in configs:
        if not _inside(candidate + "/", topmost):
            topmost.append(candidate)
    return topmost


def _inside(path: str, folders: Iterable[str]) -> bool:
    return any(path.startswith(f"{folder}/") for folder in folders)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sequence(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
