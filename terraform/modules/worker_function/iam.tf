# ---------------------------------------------------------------------------
# Worker role: least privilege
#
# The workers may touch only this deployment's topics, queues, staged and run
# objects, failure queue, log group and function. Wildcards appear only inside
# resource ARNs where the names are not known in advance (see comments).
# ---------------------------------------------------------------------------

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }

  # The local stack only: its operator plays the Lambda service and starts the worker
  # processes with this role's credentials. Empty (the default) on AWS.
  dynamic "statement" {
    for_each = length(var.trusted_principal_arns) > 0 ? [1] : []
    content {
      sid     = "LocalStackOperator"
      effect  = "Allow"
      actions = ["sts:AssumeRole"]

      principals {
        type        = "AWS"
        identifiers = var.trusted_principal_arns
      }
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

locals {
  # Key prefixes of the deployment bucket the workers read and write.
  object_prefixes = concat([var.stage_prefix], var.object_channel ? [var.run_prefix] : [])

  customer_key = var.topic_kms_key != null ? startswith(var.topic_kms_key, "arn:") : false
  # The function's own ARN, built from its name so the policy exists before the
  # function does.
  function_arn = "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${split(":", aws_iam_role.this.arn)[4]}:function:${var.name}"
}

data "aws_iam_policy_document" "worker" {
  source_policy_documents = [data.aws_iam_policy_document.objects.json]

  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # Log stream names are chosen by Lambda per execution environment: the
    # streams of our own log group are addressed as <log group ARN>:*.
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  # Lambda sends the on-failure destination's records with this role.
  statement {
    sid       = "FailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures.arn]
  }

  statement {
    sid       = "LaunchTree"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.function_arn]
  }

  dynamic "statement" {
    for_each = length(var.topic_arns) > 0 ? [1] : []
    content {
      sid       = "QueueChannelPublish"
      actions   = ["sns:Publish"]
      resources = var.topic_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.queue_arns) > 0 ? [1] : []
    content {
      sid = "QueueChannelReceive"
      actions = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
      ]
      resources = var.queue_arns
    }
  }

  dynamic "statement" {
    for_each = local.customer_key && length(var.topic_arns) > 0 ? [1] : []
    content {
      sid       = "EncryptedTopics"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.topic_kms_key]
    }
  }
}

# The deployment bucket, in a document of its own: it depends on variables only,
# so a plan renders it without AWS (tests/test_terraform.py checks it).
#
# Every cloud run (queue and object) stages the workers' shards and inputs under
# stage/{run}/ and takes back their reports and the result there; the object
# channel adds runs/{run}/l{layer}/{src}-{dst}. Keys are created per run, so each
# prefix is the narrowest fixed resource. The workers only GET and PUT (the
# coordinator, with the operator's credentials, deletes a run's prefixes).
data "aws_iam_policy_document" "objects" {
  # for_each, not count: the bucket ARN is unknown until the bucket exists.
  dynamic "statement" {
    for_each = var.bucket_arn != null ? [1] : []
    content {
      sid       = "DeploymentObjects"
      actions   = ["s3:GetObject", "s3:PutObject"]
      resources = [for prefix in local.object_prefixes : "${var.bucket_arn}/${prefix}*"]
    }
  }

  # Deployed models (fsd model deploy): the operator writes a model's shards once
  # under models/{model}-{plan}/; queries only read them.
  dynamic "statement" {
    for_each = var.bucket_arn != null ? [1] : []
    content {
      sid       = "DeployedModels"
      actions   = ["s3:GetObject"]
      resources = ["${var.bucket_arn}/${var.model_prefix}*"]
    }
  }

  # S3 answers a GET of a missing key with 404 NoSuchKey only to a caller that
  # may list it, else with 403 AccessDenied. The object channel retries a key
  # not yet written and the stage reads a missing key as "not there yet": both
  # need the 404, so the workers may list exactly the prefixes they read.
  dynamic "statement" {
    for_each = var.bucket_arn != null ? [1] : []
    content {
      sid       = "DeploymentList"
      actions   = ["s3:ListBucket"]
      resources = [var.bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = [for prefix in concat(local.object_prefixes, [var.model_prefix]) : "${prefix}*"]
      }
    }
  }

  # The object channel on S3 Express One Zone: a directory bucket is reached
  # through a session (CreateSession) that covers the whole bucket; IAM cannot
  # narrow it to a prefix, so the bucket holds the channel's runs/ only.
  dynamic "statement" {
    for_each = var.express_bucket_arn != null ? [1] : []
    content {
      sid       = "ObjectChannelExpress"
      actions   = ["s3express:CreateSession"]
      resources = [var.express_bucket_arn]

      condition {
        test     = "StringEquals"
        variable = "s3express:SessionMode"
        values   = ["ReadWrite"]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.worker.json
}
