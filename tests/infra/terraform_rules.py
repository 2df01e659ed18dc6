"""Structural rules for the Terraform under ``infra/``, checked without a Terraform binary.

Every ``.tf``, ``.tfvars`` and ``.tfbackend`` file is parsed with python-hcl2; each rule
takes the parsed document (or a stack's documents) and returns findings that name the
file and the block. The rules are what ``terraform validate`` cannot say: versions pinned
exactly, variables typed, described and validated, no literal credentials, tags on every
AWS resource, state backends with locking, and environment folders that configure every
stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

# Strings without their HCL quotes; blocks as plain dicts (a block label is a dict key).
_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# Attributes that hold a credential wherever they appear (providers, backends, resources).
CREDENTIAL_KEYS = frozenset(
    {
        "access_key",
        "secret_key",
        "token",
        "password",
        "private_key",
        "client_key",
        "client_secret",
        "gpg_passphrase",
        "registry_credentials",
    }
)
# Credential material recognised in any text, whatever the attribute is called.
CREDENTIAL_TEXT = (
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key ID"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"(?i)aws_secret_access_key\s*="), "an AWS secret access key"),
)
# Variables free of rules: switches, and free-form tag maps.
UNRULED_TYPES = frozenset({"bool", "map(string)"})


class TerraformFileError(ValueError):
    """A file that python-hcl2 cannot parse; the message names the file."""


@dataclass(frozen=True)
class Finding:
    """One broken rule: the file, the block it is in, and what is wrong."""

    file: str
    where: str
    message: str

    def __str__(self) -> str:
        """Render as ``file: where: message`` for assertion messages."""
        return f"{self.file}: {self.where}: {self.message}"


def parse(text: str, file: str) -> dict[str, Any]:
    """Parse HCL text; a syntax error raises :class:`TerraformFileError` naming ``file``."""
    try:
        document: dict[str, Any] = hcl2.loads(text, serialization_options=_OPTIONS)
    except Exception as error:  # python-hcl2 raises lark's errors, which share no base
        raise TerraformFileError(f"{file}: not valid HCL: {error}") from error
    return document


def load(path: Path, root: Path) -> dict[str, Any]:
    """Parse one file, naming it relative to ``root`` in errors."""
    return parse(path.read_text(encoding="utf-8"), str(path.relative_to(root)))


def blocks(document: Mapping[str, Any], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(label, body)`` of every one-label block of ``kind`` (variable, module, ...)."""
    for entry in document.get(kind, []):
        yield from entry.items()


def resources(document: Mapping[str, Any], kind: str = "resource") -> Iterator[tuple[str, Any]]:
    """Yield ``("type.name", body)`` of every resource (or data source with ``kind="data"``)."""
    for entry in document.get(kind, []):
        for type_name, named in entry.items():
            for name, body in named.items():
                yield f"{type_name}.{name}", body


def terraform_blocks(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the document's ``terraform {}`` blocks."""
    found: list[dict[str, Any]] = document.get("terraform", [])
    return found


def check_versions(file: str, document: Mapping[str, Any]) -> list[Finding]:
    """Providers and modules pinned to one exact version; ``required_version`` set."""
    findings: list[Finding] = []
    for terraform in terraform_blocks(document):
        if not terraform.get("required_version"):
            findings.append(Finding(file, "terraform", "required_version is not set"))
        for providers in terraform.get("required_providers", []):
            for name, requirement in providers.items():
                version = str(requirement.get("version", ""))
                if not EXACT_VERSION.match(version):
                    findings.append(
                        Finding(
                            file,
                            f"required_providers.{name}",
                            f"version {version!r} is not one exact version (x.y.z)",
                        )
                    )
    for name, body in blocks(document, "module"):
        source = str(body.get("source", ""))
        if source.startswith(("./", "../")):
            continue  # a local module has no version of its own
        if source.startswith("git::") or ".git" in source:
            if not re.search(r"[?&]ref=(v?\d+\.\d+\.\d+|[0-9a-f]{40})$", source):
                findings.append(
                    Finding(file, f"module.{name}", "git source without ?ref=<tag or commit>")
                )
            continue
        version = str(body.get("version", ""))
        if not EXACT_VERSION.match(version):
            findings.append(
                Finding(
                    file, f"module.{name}", f"version {version!r} is not one exact version (x.y.z)"
                )
            )
    return findings


def check_variables(file: str, document: Mapping[str, Any]) -> list[Finding]:
    """Every variable typed and described; every one with rules validated."""
    findings: list[Finding] = []
    for name, body in blocks(document, "variable"):
        where = f"variable.{name}"
        if not body.get("type"):
            findings.append(Finding(file, where, "has no type"))
        if not str(body.get("description", "")).strip():
            findings.append(Finding(file, where, "has no description"))
        if _type(body.get("type")) not in UNRULED_TYPES and not body.get("validation"):
            findings.append(Finding(file, where, "has no validation block"))
        for validation in body.get("validation", []):
            if not str(validation.get("error_message", "")).strip():
                findings.append(Finding(file, where, "a validation has no error_message"))
    return findings


def _type(value: Any) -> str:
    """A variable's type without the ``${}`` python-hcl2 wraps around some expressions."""
    text = str(value or "")
    return text[2:-1] if text.startswith("${") and text.endswith("}") else text


def _attributes(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """Yield ``(path, key, value)`` for every attribute at any depth of a parsed value."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield path, str(key), item
            yield from _attributes(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _attributes(item, path)


def _literal(value: Any) -> bool:
    """A non-empty string with no interpolation: a value written into the file."""
    return isinstance(value, str) and bool(value) and "${" not in value


def check_credentials(file: str, document: Mapping[str, Any], text: str) -> list[Finding]:
    """No credential attribute holds a literal, and no credential material is in the text."""
    findings = [
        Finding(file, path or key, f"{key} holds a literal value; read it from the environment")
        for path, key, value in _attributes(document, "")
        if _credential_name(key) and _literal(value)
    ]
    for pattern, what in CREDENTIAL_TEXT:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            findings.append(Finding(file, f"line {line}", f"contains {what}"))
    return findings


def _credential_name(key: str) -> bool:
    # tfvars set variables by name: db_password, github_token, ... count as credentials.
    return key in CREDENTIAL_KEYS or any(key.endswith(f"_{name}") for name in CREDENTIAL_KEYS)


def check_tags(stack: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Every AWS resource tagged: by the provider's default_tags or its own ``tags``.

    ``stack`` maps file names to the parsed ``.tf`` files of one root module. Registry
    modules of terraform-aws-modules get ``tags`` too, since some of their resources
    (launch templates' instances, for one) do not inherit default tags.
    """
    aws_providers = [
        (file, body)
        for file, document in stack.items()
        for name, body in blocks(document, "provider")
        if name == "aws"
    ]
    findings = [
        Finding(file, "provider.aws", "has no default_tags")
        for file, body in aws_providers
        if not _default_tags(body)
    ]
    defaulted = bool(aws_providers) and not findings
    for file, document in stack.items():
        for address, body in resources(document):
            if address.startswith("aws_") and not defaulted and not body.get("tags"):
                findings.append(Finding(file, address, "has no tags and no provider default_tags"))
        for name, body in blocks(document, "module"):
            if "terraform-aws-modules/" in str(body.get("source", "")) and not body.get("tags"):
                findings.append(Finding(file, f"module.{name}", "passes no tags"))
    return findings


def _default_tags(provider: Mapping[str, Any]) -> bool:
    return any(block.get("tags") for block in provider.get("default_tags", []))


def check_backend(file: str, document: Mapping[str, Any]) -> list[Finding]:
    """The stack's state lives in S3 with locking (S3-native lockfile or DynamoDB)."""
    findings: list[Finding] = []
    backends = [backend for t in terraform_blocks(document) for backend in t.get("backend", [])]
    for backend in backends:
        for kind, body in backend.items():
            if kind != "s3":
                findings.append(Finding(file, f"backend.{kind}", "state is not in S3"))
            elif body.get("use_lockfile") is not True and not body.get("dynamodb_table"):
                findings.append(Finding(file, "backend.s3", "no locking (use_lockfile = true)"))
            elif body.get("encrypt") is not True:
                findings.append(Finding(file, "backend.s3", "state is not encrypted"))
    return findings


def backends(stack: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the backend kinds the stack's files declare (one is expected)."""
    return [
        kind
        for document in stack.values()
        for terraform in terraform_blocks(document)
        for backend in terraform.get("backend", [])
        for kind in backend
    ]


def check_backend_config(file: str, config: Mapping[str, Any], key: str) -> list[Finding]:
    """An environment's ``<stack>.s3.tfbackend``: bucket, region, the expected key, locking."""
    findings = [
        Finding(file, name, "is missing")
        for name in ("bucket", "key", "region")
        if not str(config.get(name, "")).strip()
    ]
    if config.get("key") and config.get("key") != key:
        findings.append(Finding(file, "key", f"is {config.get('key')!r}, expected {key!r}"))
    if config.get("use_lockfile") is not True and not config.get("dynamodb_table"):
        findings.append(Finding(file, "use_lockfile", "locking is not enabled"))
    return findings


@dataclass(frozen=True)
class Variable:
    """A stack's input: whether it must be set, for the environment folders' check."""

    name: str
    required: bool


def variables(stack: Mapping[str, Mapping[str, Any]]) -> dict[str, Variable]:
    """Return the stack's variables by name."""
    return {
        name: Variable(name, "default" not in body)
        for document in stack.values()
        for name, body in blocks(document, "variable")
    }


def check_tfvars(
    file: str, values: Mapping[str, Any], declared: Mapping[str, Variable], environment: str
) -> list[Finding]:
    """An environment's tfvars set every required variable, only declared ones, its own env."""
    findings = [
        Finding(file, name, "is not a variable of the stack")
        for name in values
        if name not in declared
    ]
    findings += [
        Finding(file, variable.name, "is required by the stack but not set")
        for variable in declared.values()
        if variable.required and variable.name not in values
    ]
    if "environment" in declared and values.get("environment") != environment:
        findings.append(
            Finding(file, "environment", f"is {values.get('environment')!r}, not {environment!r}")
        )
    return findings


def all_findings(groups: Iterable[list[Finding]]) -> list[str]:
    """Flatten lists of findings into printable lines (empty when every rule holds)."""
    return [str(finding) for group in groups for finding in group]
