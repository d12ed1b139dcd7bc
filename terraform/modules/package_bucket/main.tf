# ---------------------------------------------------------------------------
# Package bucket
#
# The worker function's deployment zips (packages/...), kept apart from the
# deployment bucket: that one holds run data only and is force-destroyed with
# the deployment, this one is not (force_destroy defaults to false), so a
# `terraform destroy` or a replaced run-data bucket never takes an uploaded
# package with it. Versioned: an overwritten or deleted zip stays recoverable
# for noncurrent_days. Lambda copies the code at CreateFunction /
# UpdateFunctionCode with the caller's credentials: the workers get no access.
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: access logging would need a second bucket; the only writers are `fsd package` and Terraform, both recorded by CloudTrail management events
  # checkov:skip=CKV_AWS_144: cross-region replication of zips that `fsd package` rebuilds from source in ~10 s
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES256) instead of KMS: a customer key costs $1/month at rest for artifacts that hold no secrets
  # checkov:skip=CKV2_AWS_62: no consumer for event notifications; the function is pointed at a new zip by Terraform or `fsd package --upload`

  bucket_prefix = "${var.name_prefix}-pkg-"
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-packages"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

# TLS only (see the object channel module: off only against the local emulator).
data "aws_iam_policy_document" "tls_only" {
  count = var.tls_only ? 1 : 0

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

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

resource "aws_s3_bucket_policy" "this" {
  count = var.tls_only ? 1 : 0

  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.tls_only[0].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
