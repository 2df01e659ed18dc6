# The S3 buckets of the platform's stateful services: MLflow's artifacts, Tempo's trace
# blocks and Qdrant's snapshots. Each is private (public access blocked, owner-enforced,
# TLS only), versioned, and encrypted with this environment's KMS key.

locals {
  # Bucket names are global: the account ID keeps two accounts' environments apart.
  bucket_names = {
    for key, _ in var.bucket_workloads :
    key => "${var.name_prefix}-${var.environment}-${key}-${data.aws_caller_identity.current.account_id}"
  }
}

data "aws_iam_policy_document" "buckets_key" {
  #checkov:skip=CKV_AWS_109:a KMS key policy's Resource "*" is the key itself; this is the default key policy statement that delegates to IAM
  #checkov:skip=CKV_AWS_111:a KMS key policy's Resource "*" is the key itself; this is the default key policy statement that delegates to IAM
  #checkov:skip=CKV_AWS_356:a KMS key policy's Resource "*" is the key itself; this is the default key policy statement that delegates to IAM
  # The account administers the key through IAM policies (the default key policy's
  # statement); nothing else is granted here: the workloads' roles get kms:Decrypt and
  # kms:GenerateDataKey on this key through their own policies.
  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "buckets" {
  description             = "Encrypts the ${local.cluster_name} platform buckets (MLflow, Tempo, Qdrant backups)"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  policy                  = data.aws_iam_policy_document.buckets_key.json
}

resource "aws_kms_alias" "buckets" {
  name          = "alias/${local.cluster_name}-buckets"
  target_key_id = aws_kms_key.buckets.key_id
}

resource "aws_s3_bucket" "workload" {
  #checkov:skip=CKV_AWS_18:server access logs need a log bucket of their own; access is audited with CloudTrail S3 data events on the account (infra/README.md)
  #checkov:skip=CKV_AWS_144:a copy in a second region is a disaster-recovery decision (and cost) per organisation; versioning guards against deletes and overwrites
  #checkov:skip=CKV2_AWS_62:no system consumes S3 event notifications from these buckets
  for_each = var.bucket_workloads

  bucket = local.bucket_names[each.key]
  # Never deleted with objects in it: destroying the stack fails until a human empties it.
  force_destroy = false
}

resource "aws_s3_bucket_ownership_controls" "workload" {
  for_each = var.bucket_workloads

  bucket = aws_s3_bucket.workload[each.key].id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "workload" {
  for_each = var.bucket_workloads

  bucket                  = aws_s3_bucket.workload[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "workload" {
  for_each = var.bucket_workloads

  bucket = aws_s3_bucket.workload[each.key].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "workload" {
  for_each = var.bucket_workloads

  bucket = aws_s3_bucket.workload[each.key].id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.buckets.arn
    }
    # One data key per bucket instead of a KMS call per object: Tempo writes many blocks.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "workload" {
  for_each = var.bucket_workloads

  bucket = aws_s3_bucket.workload[each.key].id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    # Versioning protects against a bad delete or overwrite; old versions then go.
    noncurrent_version_expiration {
      noncurrent_days = each.value.noncurrent_version_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.workload]
}

data "aws_iam_policy_document" "bucket_tls_only" {
  for_each = var.bucket_workloads

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.workload[each.key].arn, "${aws_s3_bucket.workload[each.key].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "workload" {
  for_each = var.bucket_workloads

  bucket = aws_s3_bucket.workload[each.key].id
  policy = data.aws_iam_policy_document.bucket_tls_only[each.key].json

  # A bucket policy is refused while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.workload]
}
