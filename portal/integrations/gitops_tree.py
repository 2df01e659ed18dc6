"""Bulk reads of the GitOps clone: the files under some folders, and the ref names.

Two git processes whatever the size of the tree (``ls-tree`` lists, one ``cat-file
--batch`` reads every blob), so the service-name rules and the collision check can read
every cluster folder without a process per file. Reads are local: they see what the clone
last fetched (``GitOpsRepo.refresh``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from portal.integrations.gitops import GitOpsError, GitOpsRepo
from portal.integrations.gitops_plumbing import checked_path, run

YAML_SUFFIXES = (".yaml", ".yml")
MAX_FILE_BYTES = 1 << 20  # cluster folders hold manifests, not data; larger is refused


@dataclass
class TreeFiles:
    """The files read at one commit; ``too_large`` lists those left unread."""

    commit: str
    files: dict[str, bytes] = field(default_factory=dict)
    too_large: list[str] = field(default_factory=list)


def read_files(
    repo: GitOpsRepo,
    ref: str,
    folders: Sequence[str],
    *,
    suffixes: tuple[str, ...] | None = YAML_SUFFIXES,
    max_bytes: int = MAX_FILE_BYTES,
) -> TreeFiles:
    """Return the files under ``folders`` at ``ref`` (a branch or sha) ending in ``suffixes``.

    ``suffixes=None`` reads every file (a kustomize build may need its JSON or text files).
    """
    sha = repo.resolve(ref)
    pathspec = [checked_path(folder.strip("/")) for folder in folders if folder.strip("/")]
    listing = run(repo.git_dir, "ls-tree", "-r", "-z", "--long", sha, "--", *pathspec)
    result = TreeFiles(sha)
    wanted: list[tuple[str, str]] = []
    for record in listing.stdout.split(b"\0"):
        meta, _, raw_path = record.partition(b"\t")
        fields = meta.decode("ascii", errors="replace").split()
        path = raw_path.decode(errors="replace")
        if len(fields) != 4 or fields[1] != "blob":
            continue
        if suffixes is not None and not path.endswith(suffixes):
            continue
        if int(fields[3]) > max_bytes:
            result.too_large.append(path)
        else:
            wanted.append((path, fields[2]))
    if not wanted:
        return result
    request = b"".join(f"{blob}\n".encode() for _, blob in wanted)
    output = run(repo.git_dir, "cat-file", "--batch", stdin=request).stdout
    offset = 0
    for path, blob in wanted:
        header_end = output.index(b"\n", offset)
        header = output[offset:header_end].decode("ascii", errors="replace").split()
        if len(header) != 3 or header[0] != blob or header[1] != "blob":
            raise GitOpsError(f"git cat-file answered {' '.join(header)!r} for {path}")
        size = int(header[2])
        start = header_end + 1
        result.files[path] = output[start : start + size]
        offset = start + size + 1  # the content is followed by a newline
    return result


def ref_names(repo: GitOpsRepo) -> list[str]:
    """Return the remote's branch and tag names as the clone knows them (``release/v1``)."""
    listing = run(
        repo.git_dir, "for-each-ref", "--format=%(refname)", "refs/remotes/origin", "refs/tags"
    )
    names = []
    for line in listing.stdout.decode(errors="replace").splitlines():
        for prefix in ("refs/remotes/origin/", "refs/tags/"):
            if line.startswith(prefix):
                names.append(line.removeprefix(prefix))
    return sorted(names)
