# ---------------------------------------------------------------------------
# Object channel (FSD-Inf-Object) and run stage
#
# One private bucket. Every cloud run stages its shards, inputs, reports and
# result under stage/{run_id}/; with the object channel, workers exchange
# activations as objects runs/{run_id}/l{layer}/{src}-{dst}. With
# object_storage = "express" the runs/ objects go to an S3 Express One Zone
# directory bucket in one availability zone instead (single-digit-ms
# requests, cheaper GETs and PUTs); the stage stays in the standard bucket.
# ---------------------------------------------------------------------------

locals {
  express = var.object_storage == "express"
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: access logging would need a second bucket and logs every activation object; runs/ is short-lived scratch data
  # checkov:skip=CKV_AWS_21: versioning would keep every deleted activation object as a noncurrent version; runs/ is scratch data and packages/ are rebuilt by `fsd package`
  # checkov:skip=CKV_AWS_144: cross-region replication doubles the cost of scratch data that lives for seconds
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES256) instead of KMS: a KMS request per activation GET/PUT would dominate the channel's cost
  # checkov:skip=CKV2_AWS_62: no consumer for event notifications; receivers GET the keys their plan names

  bucket_prefix = "${var.name_prefix}-"
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

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-runs"
    status = "Enabled"

    filter {
      prefix = "runs/"
    }

    expiration {
      days = var.run_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # A run deletes its stage at the end; this catches what a dead coordinator left.
  rule {
    id     = "expire-stage"
    status = "Enabled"

    filter {
      prefix = "stage/"
    }

    expiration {
      days = var.stage_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# TLS only. Off (tls_only = false) only against the local emulator, which serves
# plain HTTP on loopback and evaluates a Deny whose condition does not match as a
# deny (moto 5.2), so this policy would block every object request there.
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

# ---------------------------------------------------------------------------
# S3 Express One Zone (object_storage = "express")
#
# A directory bucket for runs/ in the availability zone express_az_id. Its name
# is the standard bucket's (globally unique, so no account lookup is needed)
# plus the zone suffix AWS requires. Directory buckets always block public
# access, encrypt with SSE-S3 and have ACLs disabled; requests authenticate with
# a session from s3express:CreateSession (the worker role's grant in iam.tf).
# ---------------------------------------------------------------------------

resource "aws_s3_directory_bucket" "express" {
  count = local.express ? 1 : 0

  bucket        = "${aws_s3_bucket.this.id}--${var.express_az_id}--x-s3"
  force_destroy = var.force_destroy

  location {
    name = var.express_az_id
    type = "AvailabilityZone"
  }

  lifecycle {
    precondition {
      condition     = var.express_az_id != null
      error_message = "object_storage = \"express\" needs express_az_id (an availability zone id such as use1-az4)."
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "express" {
  count = local.express ? 1 : 0

  bucket = aws_s3_directory_bucket.express[0].bucket

  rule {
    id     = "expire-runs"
    status = "Enabled"

    filter {
      prefix = "runs/"
    }

    expiration {
      days = var.run_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_policy.express]
}

# S3 Lifecycle expires objects in a directory bucket through a ReadWrite session
# of its own service principal, which the bucket policy must allow.
data "aws_iam_policy_document" "express" {
  count = local.express ? 1 : 0

  statement {
    sid       = "LifecycleSessions"
    actions   = ["s3express:CreateSession"]
    resources = [aws_s3_directory_bucket.express[0].arn]

    principals {
      type        = "Service"
      identifiers = ["lifecycle.s3.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "s3express:SessionMode"
      values   = ["ReadWrite"]
    }
  }
}

resource "aws_s3_bucket_policy" "express" {
  count = local.express ? 1 : 0

  bucket = aws_s3_directory_bucket.express[0].bucket
  policy = data.aws_iam_policy_document.express[0].json
}
