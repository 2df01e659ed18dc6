"""The ``template conflicts`` check: no conflict a template update left in the service.

A template update (:mod:`portal.scaffold.updates`) merges the template's new version into
the service as the team left it; where both changed the same lines, Copier leaves inline
markers (``<<<<<<< before updating`` ... ``>>>>>>> after updating``) or a ``.rej`` file of
the hunks it could not place. Such a file would reach the cluster as it is (a manifest with
markers is not YAML), so the check fails while any remains, naming each file and line with
the hunk; the team resolves them by revising the change, and the check runs again.

It runs on every template update and on any other change whose service still holds a
marker, so a half-resolved conflict cannot slip in through an edit either.
"""

from __future__ import annotations

from pathlib import Path

from portal.integrations.copier_update import Conflict, conflicts_in
from portal.integrations.kubernetes import Finding, Severity
from portal.review.check_results import Outcome, summarise

CHECK = "template conflicts"
RULE = "template-conflict"
MAX_HUNK_CHARS = 4000  # a finding shows the hunk; a whole rejected file may be long


def service_files(service_dir: Path) -> dict[str, bytes]:
    """Return the files of a service folder (relative POSIX paths); links are not followed."""
    return {
        path.relative_to(service_dir).as_posix(): path.read_bytes()
        for path in sorted(service_dir.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def has_conflicts(service_dir: Path) -> bool:
    """Whether the service folder holds a conflict marker or a ``.rej`` file."""
    return bool(conflicts_in(service_files(service_dir)))


def _findings(service: str, conflict: Conflict) -> list[Finding]:
    where = f"services/{service}/{conflict.path}"
    if conflict.kind == "rej":
        text = conflict.hunks[0] if conflict.hunks else ""
        return [
            Finding(
                severity=Severity.ERROR,
                rule=RULE,
                object=where,
                source=where,
                path="",
                message=f"{where}: hunks the update could not apply; apply them by hand and "
                f"delete the file:\n{text[:MAX_HUNK_CHARS]}",
            )
        ]
    return [
        Finding(
            severity=Severity.ERROR,
            rule=RULE,
            object=where,
            source=f"{where}:{line}",
            path="",
            message=f"{where}:{line}: the template's change and the team's edit collide; keep "
            f"what is right and remove the markers:\n{hunk[:MAX_HUNK_CHARS]}",
        )
        for line, hunk in zip(
            conflict.lines or (0,) * len(conflict.hunks), conflict.hunks, strict=True
        )
    ]


def conflicts_outcome(service_dir: Path) -> Outcome:
    """Report every conflict left in ``services/<name>`` (one finding per hunk or file)."""
    conflicts = conflicts_in(service_files(service_dir))
    findings = [item for conflict in conflicts for item in _findings(service_dir.name, conflict)]
    return Outcome(summarise(findings, "update conflicts"), findings)
