"""The SLO rules a service ships: its generated PrometheusRule, added to the files committed.

A scaffold of a deploying template and an edit of ``services/<service>/slo.yaml`` both
commit, beside the spec, the PrometheusRule it generates (``deploy/base/slo-rules.yaml``,
:mod:`portal.review.slo_rules_shipped`) and the base kustomization listing it, so Flux
applies the rules with the service and the review check finds them equal.

The portal lists the file in the kustomization rather than the templates: a template
rendered outside the portal (plain Copier) has no generator to write the file, and a
kustomization naming a missing file does not build. A service without ``slo.yaml`` or
without ``deploy/base/kustomization.yaml`` gets nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from portal.changes.edits import Edit, EditedFiles, EditError, TreeReader
from portal.review.slo_rules_shipped import (
    KUSTOMIZATION_FILE,
    RULE_FILE,
    SLO_FILE,
    shipped_rule,
    with_rule_listed,
)
from portal.slo.compiler.errors import InvalidSpecError

# Reads a file of the change's base (repository path -> bytes, None when it has none).
BaseReader = Callable[[str], bytes | None]


def rule_files(
    service: str, files: Mapping[str, bytes], base: BaseReader | None = None
) -> dict[str, bytes]:
    """Return the rule file and the kustomization listing it, for ``services/<service>``.

    ``files`` are the files a change writes (repository paths); ``base`` reads the others
    from the commit it is based on (a scaffold renders every file: no base). Returns the
    files to write on top of ``files``: nothing when the service has no ``slo.yaml`` or no
    base kustomization, or when both are already as they should be. Raises
    :class:`InvalidSpecError` when the spec does not compile, and ``ValueError`` naming the
    kustomization when it is not one.
    """
    folder = f"services/{service}/"

    def read(path: str) -> str | None:
        content = files.get(folder + path)
        if content is None and base is not None:
            content = base(folder + path)
        return None if content is None else content.decode("utf-8")

    spec, kustomization = read(SLO_FILE), read(KUSTOMIZATION_FILE)
    if spec is None or kustomization is None:
        return {}
    wanted = {
        folder + RULE_FILE: shipped_rule(spec, service),
        folder + KUSTOMIZATION_FILE: with_rule_listed(kustomization, folder + KUSTOMIZATION_FILE),
    }
    return {
        path: text.encode() for path, text in wanted.items() if read(path[len(folder) :]) != text
    }


def with_slo_rules(service: str, files: Mapping[str, bytes]) -> dict[str, bytes]:
    """Return a scaffold's rendered ``files`` with the service's SLO rules added.

    A spec that does not compile (or a base kustomization that is not one) gets no rule
    file: the commit is made anyway, and its checks say why (the requester revises it).
    """
    try:
        return {**files, **rule_files(service, files)}
    except (InvalidSpecError, ValueError):  # a kustomization that is not one: kustomize says
        return dict(files)


def _last_edit(edits: Sequence[Edit], path: str) -> tuple[int, Edit]:
    """Return the last edit of ``path`` and its index (what made the file as it is)."""
    return [(index, edit) for index, edit in enumerate(edits) if edit.path == path][-1]


def _field(edits: Sequence[Edit], path: str) -> str:
    index, edit = _last_edit(edits, path)
    return f"edits[{index}].content" if edit.content is not None else f"edits[{index}].patch.patch"


def with_regenerated_rules(
    repo: TreeReader, base: str, service: str, edits: Sequence[Edit], edited: EditedFiles
) -> EditedFiles:
    """Return an edit change's files with its SLO rules regenerated when ``slo.yaml`` changed.

    ``edited`` are the files :func:`portal.changes.edits.apply_edits` made of ``edits`` on
    commit ``base``. Raises :class:`EditError` naming the edit: a spec whose rules cannot be
    generated, a base kustomization that is not one, or a hand edit of the generated rule
    file that differs from what the spec generates.
    """
    folder = f"services/{service}/"
    spec = folder + SLO_FILE
    if spec not in edited.files:
        return edited
    others = [folder + RULE_FILE, folder + KUSTOMIZATION_FILE]
    modes = repo.entry_modes(base, others)

    def read_base(path: str) -> bytes | None:
        return repo.read_file(base, path) if modes.get(path, "").startswith("100") else None

    try:
        extra = rule_files(service, edited.files, read_base)
    except InvalidSpecError as errors:
        problems = "; ".join(str(error) for error in errors.errors)
        raise EditError(
            {_field(edits, spec): f"{spec}: its SLO rules cannot be generated: {problems}"}
        ) from None
    except ValueError as error:
        raise EditError(
            {_field(edits, others[1]) if others[1] in edited.files else "edits": str(error)}
        ) from None
    rule = others[0]
    if rule in edited.files and rule in extra:
        raise EditError(
            {
                f"edits[{_last_edit(edits, rule)[0]}].path": (
                    f"{rule} is generated from {SLO_FILE}, which this change edits: leave it "
                    "out, the portal writes it (or send exactly what the spec generates)"
                )
            }
        )
    return EditedFiles({**edited.files, **extra}, edited.executable)
