"""A corpus of hostile scaffold answers: each must be refused on its field, nothing written.

Every entry replaces one answer of an otherwise valid ``fastapi-service`` request (or adds
one key). ``reported_as`` is the field the refusal must name (the key itself unless it had
to be escaped), ``says`` a part of the message when the reason matters.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATE = "fastapi-service"
VALID = {"name": "hostile-probe", "owner": "platform-team", "description": "A service"}
TEN_MB = 10 * 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    """One hostile answer: ``field`` set to ``value``."""

    id: str
    field: str
    value: object
    says: str = ""
    reported_as: str = ""

    @property
    def reported(self) -> str:
        """The field name the refusal names."""
        return self.reported_as or self.field


SYNTAX = "must not contain template syntax"
NOT_A_QUESTION = "not a question of this template"
CONTROL = "control characters"
SURROGATE = "is a lone surrogate"

CORPUS = [
    # template syntax, in every kind of field
    Hostile("expression", "description", "{{ 7*7 }}", SYNTAX),
    Hostile("include", "description", "{% include '/etc/passwd' %}", SYNTAX),
    Hostile("comment", "description", "{# hidden #}", SYNTAX),
    Hostile(
        "sandbox-escape",
        "description",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        SYNTAX,
    ),
    Hostile("owner-syntax", "owner", "{{ 7*7 }}"),
    Hostile("image-syntax", "image_repository", "registry.example.com/{{ name }}", SYNTAX),
    Hostile("syntax-in-list", "environments", ["dev", "{{ 7*7 }}"], SYNTAX),
    Hostile("name-syntax", "name", "{{7*7}}"),
    # Copier's private keys, and other keys no question has
    Hostile("src-path", "_src_path", "/etc", NOT_A_QUESTION),
    Hostile("commit", "_commit", "HEAD", NOT_A_QUESTION),
    Hostile("tasks", "_tasks", ["touch /tmp/pwned"], NOT_A_QUESTION),
    Hostile("answers-file", "_answers_file", "../../.bashrc", NOT_A_QUESTION),
    Hostile("subdirectory", "_subdirectory", "..", NOT_A_QUESTION),
    Hostile("external-data", "_external_data", {"x": "/etc/passwd"}, NOT_A_QUESTION),
    Hostile("unknown", "__class__", "x", NOT_A_QUESTION),
    # path separators and ..
    Hostile("dotdot", "name", "../etc", "path separators"),
    Hostile("slash", "name", "a/b", "path separators"),
    Hostile("backslash", "name", "a\\b", "path separators"),
    Hostile("dots", "name", "..", "'..'"),
    Hostile("image-dotdot", "image_repository", "../../etc"),
    # option-like values
    Hostile("dash-name", "name", "-rf"),
    Hostile("upload-pack", "name", "--upload-pack=touch"),
    Hostile("output-tag", "image_tag", "--output=/tmp/x"),
    Hostile("dash-owner", "owner", "-c"),
    # NUL and control characters
    Hostile("nul", "description", "a\x00b", CONTROL),
    Hostile("escape", "description", "\x1b[2J", CONTROL),
    Hostile("c1", "description", "next\x85line", CONTROL),
    Hostile("bidi", "description", "\u202etxt.exe", CONTROL),
    Hostile("newline", "description", "one\ntwo", "single line"),
    Hostile("tab", "description", "one\ttwo", CONTROL),
    Hostile("nul-name", "name", "svc\x00"),
    Hostile("nul-owner", "owner", "platform-team\x00", CONTROL),
    Hostile("nul-key", "\x00", "x", NOT_A_QUESTION, reported_as="\\x00"),
    # lone surrogates
    Hostile("surrogate", "description", "\ud800", SURROGATE),
    Hostile("surrogate-tail", "description", "ok \udfff", SURROGATE),
    Hostile("surrogate-name", "name", "\ud800"),
    Hostile("surrogate-owner", "owner", "\udc00", SURROGATE),
    Hostile("surrogate-list", "environments", ["dev", "\ud800"], SURROGATE),
    Hostile("surrogate-key", "\ud800", "x", NOT_A_QUESTION, reported_as="\\ud800"),
    # 10 MB strings
    Hostile("huge-description", "description", "a" * TEN_MB, "at most"),
    Hostile("huge-name", "name", "a" * TEN_MB, "at most 40 characters"),
    Hostile("huge-owner", "owner", "a" * TEN_MB, "at most"),
    Hostile("huge-image", "image_repository", "a" * TEN_MB, "at most"),
    # absurd quantities and numbers
    Hostile("memory", "memory_request", "99999999999999999999999999Gi", "at most 512Gi"),
    Hostile("memory-limit", "memory_limit", "600Gi", "at most 512Gi"),
    Hostile("cpu", "cpu_request", "65", "at most 64 CPU cores"),
    Hostile("cpu-huge", "cpu_limit", "99999999999999999999999", "at most 64 CPU cores"),
    Hostile("cpu-exponent", "cpu_request", "1e308"),
    Hostile("replicas", "replicas_max", 10**6),
    Hostile("replicas-digits", "replicas_max", "9" * 5000, "fits in 64 bits"),
    Hostile("port-huge", "port", 10**30, "fits in 64 bits"),
    Hostile("port-float", "port", 8080.5, "whole number"),
    Hostile("port-negative", "port", -1),
    # reserved names (issue 10, finding 2), each with its reason
    Hostile("kube-system", "name", "kube-system", "kube-system is a Kubernetes system namespace"),
    Hostile("kube-public", "name", "kube-public", "is a Kubernetes system namespace"),
    Hostile("kube-node-lease", "name", "kube-node-lease", "is a Kubernetes system namespace"),
    Hostile("default", "name", "default", "default is a Kubernetes system namespace"),
    Hostile("flux-system", "name", "flux-system", "root Kustomization"),
    Hostile("infrastructure", "name", "infrastructure", "infrastructure Kustomization"),
    Hostile("monitoring", "name", "monitoring", "monitoring stack"),
    Hostile("main", "name", "main", "main is a git ref name"),
    Hostile("head", "name", "head", "head is a git ref name"),
    Hostile("HEAD", "name", "HEAD", "HEAD is a git ref name"),
    Hostile("master", "name", "master", "git ref name"),
    Hostile(
        "cluster-object",
        "name",
        "opentelemetry-collector",
        "is already the name of HelmRelease monitoring/opentelemetry-collector in infrastructure/",
    ),
    Hostile("portal", "name", "portal", "already has a component"),
    # unicode look-alikes
    Hostile("hyphen-lookalike", "name", "kube\u2010system", "DNS-1123"),
    Hostile("cyrillic-e", "name", "kub\u0435-system", "DNS-1123"),
    Hostile("fullwidth", "name", "\uff4d\uff41\uff49\uff4e", "DNS-1123"),
    Hostile("kelvin", "name", "\u212aube-system", "is a Kubernetes system namespace"),
    Hostile("zero-width", "name", "payments\u200b", "DNS-1123"),
    Hostile("owner-lookalike", "owner", "platform\u2010team"),
    # YAML-significant values
    Hostile("yaml-null", "name", "null", "reads as a boolean or null in YAML"),
    Hostile("yaml-yes", "name", "yes", "reads as a boolean or null in YAML"),
    Hostile("yaml-off", "name", "off", "reads as a boolean or null in YAML"),
    Hostile("yaml-tilde", "name", "~"),
    Hostile("yaml-mapping", "name", "payments: x"),
    Hostile("yaml-alias", "owner", "*team"),
    Hostile("yaml-tag", "image_tag", "!!python/object/apply:os.system"),
    Hostile("yaml-hex", "port", "0x1F90", "whole number"),
    Hostile("yaml-bool", "enable_metrics", "yes please", "true or false"),
    Hostile("yaml-choice", "lifecycle", "production\n"),
    Hostile("structure-as-text", "description", {"a": "b"}, "must be text"),
]
