"""Files a change copies verbatim from its template ("vendored"), found by their blob digest.

A scaffold records in its ``.copier-answers.yml`` the template commit it was rendered from
(``_commit``: a tag such as ``v0.3.0``, or a sha); the template's repository is where the
portal rendered it from. A changed file whose git blob is the blob of a template file with
the same file name is the template's own content: the change page collapses it.

Review never imports scaffolding: the application hands in how to find a template's local
repository by name (:data:`TemplateRepository`), the way the revise page is offered.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import Depends

from portal.deps import from_app_state
from portal.integrations.gitops_blobs import resolve_commit, tree_blobs

logger = logging.getLogger(__name__)

TemplateRepository = Callable[[str], Path | None]
"""Return the local git repository a template of that name renders from (None: unknown)."""

ANSWERS_FILE = ".copier-answers.yml"
_COMMIT_LINE = re.compile(r"""^_commit:[ \t]*['"]?(?P<ref>[^'"\s#]+)""", re.MULTILINE)


@dataclass(frozen=True)
class TemplateTree:
    """The blobs of one template at the commit a change was rendered from."""

    name: str
    version: str
    by_blob: Mapping[str, frozenset[str]]  # blob sha -> file names (last path segment)

    @property
    def label(self) -> str:
        """Say where vendored files come from ("vendored from template X vY")."""
        version = self.version if self.version.startswith("v") else f"v{self.version}"
        return f"vendored from template {self.name} {version}".rstrip()

    def match(self, path: str, blob: str) -> str | None:
        """Return :attr:`label` when ``blob`` is a template file named like ``path``."""
        names = self.by_blob.get(blob)
        return self.label if names and PurePosixPath(path).name in names else None


def recorded_commit(answers: bytes) -> str | None:
    """Return the ``_commit`` a ``.copier-answers.yml`` records, if any."""
    found = _COMMIT_LINE.search(answers.decode(errors="replace"))
    return found["ref"] if found else None


@functools.lru_cache(maxsize=32)
def _tree(git_dir: Path, commit: str) -> Mapping[str, frozenset[str]]:
    """Index a template commit's files by blob (cached: a commit never changes)."""
    names: dict[str, set[str]] = {}
    for path, blob in tree_blobs(git_dir, commit).items():
        names.setdefault(blob, set()).add(PurePosixPath(path).name)
    return {blob: frozenset(found) for blob, found in names.items()}


class TemplateFiles:
    """Finds the tree of the template a change was rendered from."""

    def __init__(self, repository: TemplateRepository | None = None) -> None:
        """Look templates up with ``repository`` (None: no change has vendored files)."""
        self.repository = repository

    def tree(self, name: str, version: str, refs: Sequence[str]) -> TemplateTree | None:
        """Return the template's tree at the first of ``refs`` its repository has; else None.

        Vendored files are a reading aid: a template that is gone, or a repository that
        cannot be read, leaves every file shown instead of failing the page.
        """
        if self.repository is None or not name:
            return None
        try:
            git_dir = self.repository(name)
            if git_dir is None:
                return None
            for ref in refs:
                commit = resolve_commit(git_dir, ref)
                if commit is not None:
                    return TemplateTree(name, version, _tree(git_dir, commit))
        except Exception as exc:  # a registry or git failure; the page goes on without
            logger.warning("template %s cannot be read for vendored files: %s", name, exc)
        return None


app_template_files = from_app_state("template_files", TemplateFiles)
TemplateFilesDep = Annotated[TemplateFiles, Depends(app_template_files)]
