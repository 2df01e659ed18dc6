"""A service level read from one document, and the translation step of foreign formats.

OpenSLO and Pyrra documents are rewritten as Sloth service levels (``Translation``) and
validated by the same model as Sloth's own files, so every format gets the same checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from portal.slo.compiler.errors import Document, Location, SpecError, dotted, friendly_message
from portal.slo.compiler.promql import format_duration
from portal.slo.compiler.scaled_windows import resolve_period
from portal.slo.compiler.spec import KubernetesMeta, ServiceLevel
from portal.slo.compiler.windows import WindowsCatalog
from portal.yaml_source import line_of


@dataclass(frozen=True)
class SpecDocument:
    """One service level read from one document, whatever its original format.

    ``spec_version`` and ``mode`` become the ``sloth_spec`` and ``sloth_mode`` labels.
    ``origins`` holds, per SLO, where it sits in the original document: errors found
    later (a bad query template, an unknown period) point there.
    """

    document: Document
    service_level: ServiceLevel
    spec_version: str
    mode: str
    origins: tuple[Location, ...]
    translated: bool = False
    period: str | None = None
    period_location: Location = ()
    kubernetes: KubernetesMeta | None = None

    def slo_error(self, index: int, location: Location, message: str) -> SpecError:
        """Build an error about one field of one SLO, placed at the SLO in the original file."""
        origin = self.origins[index]
        name = self.service_level.slos[index].name
        if self.translated:
            return SpecError(
                file=self.document.source,
                message=message,
                slo=name,
                field=dotted(location),
                line=line_of(self.document.node, origin),
            )
        return self.document.error((*origin, *location), message, slo_prefix=origin[:-1])

    def where(self, index: int) -> str:
        """``file:line`` of an SLO, for messages that point at another definition."""
        line = line_of(self.document.node, self.origins[index])
        return f"{self.document.source}:{line}" if line else self.document.source

    def error(self, location: Location, message: str) -> SpecError:
        """Build an error about the document itself (its period, its service)."""
        return self.document.error(location, message, slo_prefix=("-",))


@dataclass
class Translation:
    """A document of another format rewritten as a Sloth service level, not yet validated."""

    document: Document
    service_level: dict[str, Any]
    origins: list[Location]
    spec_version: str
    mode: str
    period: str | None = None
    period_location: Location = ()
    errors: list[SpecError] = field(default_factory=list)
    slices: list[tuple[Location, int]] = field(default_factory=list)
    """OpenSLO time slices: where each ``timeSliceWindow`` is written, and its length."""


def validate_translation(translation: Translation) -> tuple[SpecDocument | None, list[SpecError]]:
    """Validate a translated service level with the Sloth model; map errors to the source."""
    document = translation.document
    try:
        level = ServiceLevel.model_validate(translation.service_level)
    except ValidationError as error:
        errors = []
        for item in error.errors():
            location = item["loc"]
            slo: str | None = None
            origin: Location = ()
            rest = location
            if len(location) > 1 and location[0] == "slos" and isinstance(location[1], int):
                index = location[1]
                slos = translation.service_level.get("slos", [])
                slo = str(slos[index].get("name", f"#{index + 1}"))
                origin, rest = translation.origins[index], location[2:]
            errors.append(
                SpecError(
                    file=document.source,
                    message=friendly_message(item["type"], item["msg"]),
                    slo=slo,
                    field=dotted(rest),
                    line=line_of(document.node, origin),
                )
            )
        return None, errors
    spec = SpecDocument(
        document=document,
        service_level=level,
        spec_version=translation.spec_version,
        mode=translation.mode,
        origins=tuple(translation.origins),
        translated=True,
        period=translation.period,
        period_location=translation.period_location,
    )
    return spec, semantic_errors(spec)


def semantic_errors(spec: SpecDocument) -> list[SpecError]:
    """Errors between fields (duplicate names, missing alert name), placed at their SLO."""
    errors = []
    for location, message in spec.service_level.semantic_errors():
        index = location[1]
        assert isinstance(index, int)
        errors.append(spec.slo_error(index, location[2:], message))
    return errors


def validate_or_errors(
    translation: Translation, catalog: WindowsCatalog | None = None
) -> tuple[SpecDocument | None, list[SpecError]]:
    """Validate a translation unless translating already failed.

    With ``catalog``, the period is checked here too, so that a failed translation lists
    every error at once (resolution, which checks it otherwise, only sees documents without
    errors), and so are the time slices against the period's shortest alert window.
    """
    errors = list(translation.errors)
    document = translation.document
    if catalog is not None and translation.period is not None:
        try:
            windows = resolve_period(catalog, translation.period)
        except ValueError as error:
            if errors:
                location = translation.period_location
                errors.append(document.error(location, str(error), slo_prefix=("-",)))
        else:
            shortest = min(windows.sli_windows())
            for location, slice_ms in translation.slices:
                if slice_ms > shortest:
                    message = (
                        f"{format_duration(slice_ms)} is longer than the shortest alert window "
                        f"{format_duration(shortest)} of the period {windows.period}: every "
                        "window must hold at least one slice"
                    )
                    errors.append(document.error(location, message, slo_prefix=("-",)))
    if errors:
        return None, errors
    return validate_translation(translation)
