# ---------------------------------------------------------------------------
# Queue channel (FSD-Inf-Queue)
#
# Senders publish activation blocks to a topic with the String message
# attribute dst = "<worker id>"; each worker slot's queue is subscribed to
# every topic with the filter policy {"dst": ["<slot>"]} and raw delivery, so a
# message lands only in its receiver's queue, body unchanged.
# ---------------------------------------------------------------------------

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  # Queue ARNs built from the names, so each queue's policy is set when the
  # queue is created (a separate aws_sqs_queue_policy adds a second ~25 s
  # attribute-propagation wait per queue on the emulator, after the first).
  queue_names = [for i in range(var.queue_count) : "${var.name_prefix}-w${i}"]
  queue_arn_prefix = join(":", [
    "arn", data.aws_partition.current.partition, "sqs",
    data.aws_region.current.name, data.aws_caller_identity.current.account_id,
  ])

  subscriptions = {
    for pair in setproduct(range(var.topic_count), range(var.queue_count)) :
    "${pair[0]}-${pair[1]}" => { topic = pair[0], queue = pair[1] }
  }
}

resource "aws_sns_topic" "this" {
  count = var.topic_count

  name              = "${var.name_prefix}-t${count.index}"
  kms_master_key_id = var.kms_master_key_id
}

# Shared dead-letter queue: messages a worker could not process max_receive_count times.
# Off only against the local emulator (see var.dead_letter).
resource "aws_sqs_queue" "dlq" {
  count = var.dead_letter ? 1 : 0

  name                      = "${var.name_prefix}-dlq"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = 1209600
}

resource "aws_sqs_queue" "this" {
  count = var.queue_count

  name                       = local.queue_names[count.index]
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = var.message_retention_s
  visibility_timeout_seconds = var.visibility_timeout
  receive_wait_time_seconds  = 20
  redrive_policy = var.dead_letter ? jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[0].arn
    maxReceiveCount     = var.max_receive_count
  }) : null
  policy = data.aws_iam_policy_document.queue[count.index].json
}

# Only our topics may send to a worker queue.
data "aws_iam_policy_document" "queue" {
  count = var.queue_count

  statement {
    sid       = "OnlyOurTopics"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = ["${local.queue_arn_prefix}:${local.queue_names[count.index]}"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = aws_sns_topic.this[*].arn
    }
  }
}

resource "aws_sns_topic_subscription" "this" {
  for_each = local.subscriptions

  topic_arn            = aws_sns_topic.this[each.value.topic].arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this[each.value.queue].arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageAttributes"
  filter_policy        = jsonencode({ dst = [tostring(each.value.queue)] })
}
