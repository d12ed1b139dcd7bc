# ---------------------------------------------------------------------------
# Worker function outputs
# ---------------------------------------------------------------------------

output "function_name" {
  description = "Function name."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "Function ARN."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "Execution role ARN."
  value       = aws_iam_role.this.arn
}

output "dlq_url" {
  description = "Dead-letter queue of failed asynchronous invocations."
  value       = aws_sqs_queue.dlq.url
}
