"""The ``checkov`` review check: checkov's Kubernetes checks over every overlay that built.

One scan for all environments (checkov starts slowly); each environment's objects are one
file, so a finding names its overlay. The platform's blocking check ids are errors, the
others advisory warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import yaml

from portal.integrations.checkov import Checkov, CheckovFailure
from portal.integrations.kubernetes import Finding, Severity


def checkov_findings(
    checkov: Checkov,
    built: Mapping[str, list[dict[str, Any]]],
    errors: AbstractSet[str],
) -> tuple[str, list[Finding]]:
    """Scan the objects of each environment; return the subject and the findings."""
    manifests = {
        f"{environment}.yaml": yaml.safe_dump_all(objects, sort_keys=False)
        for environment, objects in built.items()
    }
    failures = checkov.scan(manifests)
    findings = [_checkov_finding(failure, errors) for failure in failures]
    count = sum(len(objects) for objects in built.values())
    return f"checkov on {count} objects of {', '.join(built)}", findings


def _checkov_finding(failure: CheckovFailure, errors: AbstractSet[str]) -> Finding:
    # checkov names Kubernetes objects Kind.namespace.name; the portal writes Kind/namespace/name.
    environment = failure.file.removesuffix(".yaml")
    return Finding(
        severity=Severity.ERROR if failure.check_id in errors else Severity.WARNING,
        rule=failure.check_id,
        object="/".join(failure.resource.split(".", 2)),
        source=f"deploy/overlays/{environment}",
        path=failure.keys[-1] if failure.keys else "",
        message=failure.check_name,
        reason="checkov Kubernetes check "
        + ("(blocking on this platform)" if failure.check_id in errors else "(advisory)"),
    )
