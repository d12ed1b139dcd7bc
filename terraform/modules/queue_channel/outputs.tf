# ---------------------------------------------------------------------------
# Queue channel outputs
# ---------------------------------------------------------------------------

output "topic_arns" {
  description = "SNS topic ARNs, in topic order."
  value       = aws_sns_topic.this[*].arn
}

output "queue_urls" {
  description = "SQS queue URLs, index = worker slot."
  value       = aws_sqs_queue.this[*].url
}

output "queue_arns" {
  description = "SQS queue ARNs, index = worker slot."
  value       = aws_sqs_queue.this[*].arn
}

output "dlq_url" {
  description = "URL of the shared dead-letter queue (null without dead_letter)."
  value       = try(aws_sqs_queue.dlq[0].url, null)
}

output "kms_master_key_id" {
  description = "KMS key (id, ARN or alias) encrypting the topics."
  value       = var.kms_master_key_id
}
