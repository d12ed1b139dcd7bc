# ---------------------------------------------------------------------------
# Worker role: least privilege
#
# The workers may touch only this deployment's topics, queues, run objects,
# dead-letter queue, log group and function. Wildcards appear only inside
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
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-role"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

locals {
  customer_key = var.topic_kms_key != null ? startswith(var.topic_kms_key, "arn:") : false
  # The function's own ARN, built from its name so the policy exists before the
  # function does (the function's dead-letter queue is checked at creation).
  function_arn = "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${split(":", aws_iam_role.this.arn)[4]}:function:${var.name}"
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid     = "Logs"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    # Log stream names are chosen by Lambda per execution environment: the
    # streams of our own log group are addressed as <log group ARN>:*.
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
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

  dynamic "statement" {
    for_each = var.bucket_arn != null ? [1] : []
    content {
      sid     = "ObjectChannelObjects"
      actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      # Object keys are runs/{run_id}/l{layer}/{src}-{dst}, created per run: the
      # run prefix is the narrowest fixed resource.
      resources = ["${var.bucket_arn}/${var.run_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = var.bucket_arn != null ? [1] : []
    content {
      sid       = "ObjectChannelList"
      actions   = ["s3:ListBucket"]
      resources = [var.bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${var.run_prefix}*"]
      }
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.worker.json
}
