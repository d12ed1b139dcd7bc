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

output "failure_queue_url" {
  description = "URL of the SQS queue that receives a record of every failed asynchronous invocation (on-failure destination)."
  value       = aws_sqs_queue.failures.url
}

output "failure_queue_arn" {
  description = "ARN of the failure queue."
  value       = aws_sqs_queue.failures.arn
}
