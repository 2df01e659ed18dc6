"""Read SLO spec files of any supported format into one model, collecting every error.

A file may hold several YAML documents. Each document is recognised by its header:
``version: prometheus/v1`` (Sloth), ``apiVersion: sloth.slok.dev/v1`` + ``kind:
PrometheusServiceLevel`` (Sloth's CRD), ``apiVersion: openslo/v1`` (SLO, SLI) or
``apiVersion: pyrra.dev/v1alpha1`` (ServiceLevelObjective). OpenSLO and Pyrra documents
are translated into the Sloth model and validated by it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from portal.slo.compiler.documents import SpecDocument, semantic_errors, validate_or_errors
from portal.slo.compiler.errors import Document, SpecError, read_documents
from portal.slo.compiler.openslo import OPENSLO_PREFIX, translate_openslo
from portal.slo.compiler.pyrra import PYRRA_API_VERSION, translate_pyrra
from portal.slo.compiler.spec import (
    PROMETHEUS_V1,
    SLOTH_CRD_API_VERSION,
    SLOTH_CRD_KIND,
    PrometheusServiceLevelCRD,
    PrometheusV1,
)
from portal.slo.compiler.windows import WindowsCatalog

MODE_PROMETHEUS = "cli-gen-prom"
MODE_KUBERNETES = "cli-gen-k8s"


def _sloth_document(document: Document) -> tuple[SpecDocument | None, list[SpecError]]:
    version = document.data.get("version")
    if version != PROMETHEUS_V1:
        # Another version may have another schema: its other fields would only add noise.
        message = f'unsupported version "{version}": expected "{PROMETHEUS_V1}"'
        return None, [document.error(("version",), message)]
    try:
        model = PrometheusV1.model_validate(document.data)
    except ValidationError as error:
        return None, document.validation_errors(error)
    spec = SpecDocument(
        document=document,
        service_level=model,
        spec_version=PROMETHEUS_V1,
        mode=MODE_PROMETHEUS,
        origins=tuple(("slos", index) for index in range(len(model.slos))),
    )
    return spec, semantic_errors(spec)


def _crd_document(document: Document) -> tuple[SpecDocument | None, list[SpecError]]:
    try:
        model = PrometheusServiceLevelCRD.model_validate(document.data)
    except ValidationError as error:
        return None, document.validation_errors(error, slo_prefix=("spec", "slos"))
    spec = SpecDocument(
        document=document,
        service_level=model.spec,
        spec_version=SLOTH_CRD_API_VERSION,
        mode=MODE_KUBERNETES,
        origins=tuple(("spec", "slos", index) for index in range(len(model.spec.slos))),
        kubernetes=model.metadata,
    )
    return spec, semantic_errors(spec)


NOT_A_SPEC = (
    "not an SLO spec: expected version: prometheus/v1 (Sloth), apiVersion: sloth.slok.dev/v1 "
    "kind: PrometheusServiceLevel, apiVersion: openslo/v1 (kind SLO, SLI) or apiVersion: "
    "pyrra.dev/v1alpha1 (kind ServiceLevelObjective)"
)


def collect_sources(
    sources: Mapping[str, str], catalog: WindowsCatalog | None = None
) -> tuple[list[SpecDocument], list[SpecError]]:
    """Read every document of every file: the valid service levels and all the errors.

    With ``catalog``, the period of a document that fails translation is checked too.
    """
    specs: list[SpecDocument] = []
    errors: list[SpecError] = []
    openslo: list[Document] = []
    for source, text in sources.items():
        documents, read_errors = read_file_documents(source, text)
        errors.extend(read_errors)
        for document in documents:
            data = document.data
            if not isinstance(data, dict):
                errors.append(document.error((), f"{NOT_A_SPEC}; got a {type(data).__name__}"))
                continue
            api_version, kind = data.get("apiVersion"), data.get("kind")
            spec: SpecDocument | None = None
            found: list[SpecError] = []
            if "version" in data and api_version is None:
                spec, found = _sloth_document(document)
            elif api_version == SLOTH_CRD_API_VERSION and kind == SLOTH_CRD_KIND:
                spec, found = _crd_document(document)
            elif api_version == SLOTH_CRD_API_VERSION and kind == "AlertWindows":
                found = [document.error(("kind",), "an AlertWindows file: pass it with --windows")]
            elif isinstance(api_version, str) and api_version.startswith(OPENSLO_PREFIX):
                openslo.append(document)
            elif api_version == PYRRA_API_VERSION:
                spec, found = validate_or_errors(translate_pyrra(document), catalog)
            else:
                found = [document.error((), NOT_A_SPEC)]
            errors.extend(found)
            if spec is not None:
                specs.append(spec)
    for translation in translate_openslo(openslo):
        spec, found = validate_or_errors(translation, catalog)
        errors.extend(found)
        if spec is not None:
            specs.append(spec)
    return specs, errors


def read_file_documents(source: str, text: str) -> tuple[list[Document], list[SpecError]]:
    """Parse a file's YAML documents; an empty file is an error."""
    documents, errors = read_documents(source, text)
    if not documents and not errors:
        errors.append(SpecError(source, "no SLO spec in this file (it is empty)"))
    return documents, errors
