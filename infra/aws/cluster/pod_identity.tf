# EKS Pod Identity: each bucket's service account (e.g. mlflow/mlflow) gets a role that
# may read and write that one bucket and use the buckets' KMS key, nothing else. Pods of
# that service account receive temporary credentials from the pod identity agent; no
# access key exists anywhere.

data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    sid     = "EksPodIdentity"
    actions = ["sts:AssumeRole", "sts:TagSession"]

    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }

    # Only this account's clusters may hand the role to a pod.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "workload" {
  for_each = var.bucket_workloads

  name               = "${local.cluster_name}-${each.key}"
  description        = "Pod Identity role of ${each.value.namespace}/${each.value.service_account}: the ${local.bucket_names[each.key]} bucket"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
}

data "aws_iam_policy_document" "workload_bucket" {
  for_each = var.bucket_workloads

  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.workload[each.key].arn]
  }

  statement {
    sid     = "ReadWriteObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.workload[each.key].arn}/*"]
  }

  statement {
    sid       = "UseTheBucketKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.buckets.arn]
  }
}

resource "aws_iam_role_policy" "workload_bucket" {
  for_each = var.bucket_workloads

  name   = "bucket-${each.key}"
  role   = aws_iam_role.workload[each.key].id
  policy = data.aws_iam_policy_document.workload_bucket[each.key].json
}

resource "aws_eks_pod_identity_association" "workload" {
  for_each = var.bucket_workloads

  cluster_name    = module.eks.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.workload[each.key].arn

  # The agent add-on must run before a pod can use the association.
  depends_on = [module.eks]
}
