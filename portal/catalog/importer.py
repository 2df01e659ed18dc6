"""The one entry point for importing catalog sources, shared by the CLI, the UI and start-up."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from portal.catalog.known_files import load_known_files
from portal.catalog.models import ImportReport
from portal.catalog.sources import Limits, read_sources
from portal.catalog.store import apply_import, root_keys
from portal.config import Settings
from portal.integrations.git import GitFileReader
from portal.integrations.git_sources import GitCatalogReader


def git_reader(settings: Settings) -> GitFileReader:
    """Return the git reader (files and folders) that caches mirrors under the data dir."""
    return GitCatalogReader(Path(settings.data_dir) / "cache" / "git")


def import_locations(
    session: Session, locations: list[str], settings: Settings, git: GitFileReader | None = None
) -> ImportReport:
    """Read ``locations`` (files, folders, ``git+URL#REF:PATH``) and store the result."""
    limits = Limits(settings.catalog_max_file_bytes, settings.catalog_max_aliases)
    known = load_known_files(session)
    read = read_sources(locations, git or git_reader(settings), limits, known)
    return apply_import(session, read)


def refresh_all(
    session: Session, settings: Settings, git: GitFileReader | None = None
) -> ImportReport:
    """Re-read every root registered so far."""
    return import_locations(session, root_keys(session), settings, git)
