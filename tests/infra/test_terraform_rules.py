"""The structural rules catch what they are for: each is fed a bad snippet and a good one."""

from __future__ import annotations

import pytest

from tests.infra import terraform_rules as rules

GOOD_STACK = """
terraform {
  required_version = ">= 1.11.0, < 2.0.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "6.38.0"
    }
  }
  backend "s3" {
    use_lockfile = true
    encrypt      = true
  }
}

provider "aws" {
  region = var.aws_region
  default_tags {
    tags = { stack = "test" }
  }
}

variable "aws_region" {
  description = "Region."
  type        = string
  validation {
    condition     = length(var.aws_region) > 0
    error_message = "aws_region must not be empty."
  }
}

variable "enabled" {
  description = "A switch needs no validation."
  type        = bool
  default     = true
}

module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"
  tags    = { stack = "test" }
}

resource "aws_s3_bucket" "b" {
  bucket = "name-${var.aws_region}"
}
"""


def _findings(text: str) -> list[str]:
    document = rules.parse(text, "snippet.tf")
    return rules.all_findings(
        [
            rules.check_versions("snippet.tf", document),
            rules.check_variables("snippet.tf", document),
            rules.check_credentials("snippet.tf", document, text),
            rules.check_backend("snippet.tf", document),
            rules.check_tags({"snippet.tf": document}),
        ]
    )


def test_a_good_stack_has_no_findings() -> None:
    """The rules accept what infra/aws does, so the failures below are about the change."""
    assert _findings(GOOD_STACK) == []


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('version = "6.38.0"', 'version = "~> 6.0"', "required_providers.aws: version '~> 6.0'"),
        ('version = "6.6.0"', 'version = ">= 6.6"', "module.vpc: version '>= 6.6'"),
        ('  version = "6.6.0"\n', "", "module.vpc: version ''"),
        ('required_version = ">= 1.11.0, < 2.0.0"', "", "terraform: required_version"),
        ('description = "Region."', "", "variable.aws_region: has no description"),
        ("type        = string", "", "variable.aws_region: has no type"),
        ("validation {", "dynamic_x {", "variable.aws_region: has no validation block"),
        ("use_lockfile = true", "use_lockfile = false", "backend.s3: no locking"),
        ("encrypt      = true", "encrypt      = false", "backend.s3: state is not encrypted"),
        ('backend "s3" {', 'backend "local" {', "backend.local: state is not in S3"),
        ('    tags = { stack = "test" }\n', "", "provider.aws: has no default_tags"),
        ('  tags    = { stack = "test" }\n', "", "module.vpc: passes no tags"),
        (
            "region = var.aws_region\n",
            'region = var.aws_region\n  access_key = "AKIAABCDEFGHIJKLMNOP"\n',
            "access_key holds a literal value",
        ),
        (
            'bucket = "name-${var.aws_region}"',
            'bucket = "name"\n  db_password = "hunter2"',
            "db_password holds a literal value",
        ),
        (
            'bucket = "name-${var.aws_region}"',
            'bucket = "-----BEGIN OPENSSH PRIVATE KEY-----"',
            "contains a private key",
        ),
    ],
)
def test_each_rule_reports_what_breaks_it(old: str, new: str, expected: str) -> None:
    """One edit of the good stack, one finding that names the block."""
    assert old in GOOD_STACK, old
    findings = _findings(GOOD_STACK.replace(old, new, 1))
    assert any(expected in finding for finding in findings), findings


def test_an_untagged_resource_is_reported_when_the_provider_has_no_default_tags() -> None:
    """Without default tags every AWS resource must carry its own."""
    text = GOOD_STACK.replace('    tags = { stack = "test" }\n', "", 1)
    assert any("aws_s3_bucket.b: has no tags" in finding for finding in _findings(text))
    tagged = text.replace('bucket = "name-${var.aws_region}"', 'bucket = "x"\n  tags = {a = "b"}')
    assert not any("aws_s3_bucket.b" in finding for finding in _findings(tagged))


def test_git_module_sources_need_a_tag_or_commit() -> None:
    """A git source pins with ?ref=; a branch or nothing is a finding."""
    pinned = 'module "m" {\n  source = "git::https://example.invalid/m.git?ref=v1.2.3"\n}\n'
    floating = 'module "m" {\n  source = "git::https://example.invalid/m.git?ref=main"\n}\n'
    assert rules.check_versions("m.tf", rules.parse(pinned, "m.tf")) == []
    assert rules.check_versions("m.tf", rules.parse(floating, "m.tf"))


def test_a_credential_from_a_variable_is_not_a_literal() -> None:
    """Interpolated values (Secrets Manager data, variables) are how credentials arrive."""
    text = 'provider "flux" {\n  git = { ssh = { private_key = data.x.y.secret_string } }\n}\n'
    assert rules.check_credentials("p.tf", rules.parse(text, "p.tf"), text) == []


def test_environment_files_are_checked_against_the_stack() -> None:
    """tfvars: unknown and missing variables, the wrong environment; backend: key and locking."""
    declared = {
        "environment": rules.Variable("environment", required=True),
        "aws_region": rules.Variable("aws_region", required=True),
        "tags": rules.Variable("tags", required=False),
    }
    values = {"environment": "staging", "typo_region": "eu-west-1"}
    findings = rules.all_findings([rules.check_tfvars("dev/x.tfvars", values, declared, "dev")])
    assert any("typo_region: is not a variable" in finding for finding in findings)
    assert any("aws_region: is required" in finding for finding in findings)
    assert any("environment: is 'staging', not 'dev'" in finding for finding in findings)
    config = {"bucket": "b", "key": "prod/network.tfstate", "region": "eu-west-1"}
    findings = rules.all_findings(
        [rules.check_backend_config("dev/network.s3.tfbackend", config, "dev/network.tfstate")]
    )
    assert any("key: is 'prod/network.tfstate'" in finding for finding in findings)
    assert any("locking is not enabled" in finding for finding in findings)


def test_a_syntax_error_names_the_file() -> None:
    """Unparseable HCL is an error naming the file, not a crash deep in the rules."""
    with pytest.raises(rules.TerraformFileError, match=r"^broken\.tf: not valid HCL"):
        rules.parse('resource "x" {\n  a = \n', "broken.tf")
