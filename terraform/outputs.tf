# ---------------------------------------------------------------------------
# The deployment manifest: `terraform output -json` is read by `fsd`
# (fsd_core/cloud.py, Manifest). Keep the names in step with its fields.
# ---------------------------------------------------------------------------

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "endpoint" {
  description = "Emulator base URL every client must use, or null on AWS."
  value       = var.endpoint
}

output "max_workers" {
  description = "Worker slots: the largest number of workers a run may use."
  value       = var.max_workers
}

output "topic_arns" {
  description = "SNS topic ARNs of the queue channel (sender src publishes on topic src mod length); empty without the queue channel."
  value       = try(module.queue_channel[0].topic_arns, [])
}

output "queue_urls" {
  description = "SQS queue URL per worker slot (index = worker id); empty without the queue channel."
  value       = try(module.queue_channel[0].queue_urls, [])
}

output "bucket" {
  description = "The deployment bucket (run data): every run's stage (keys stage/{run}/...) and the object channel (runs/...)."
  value       = module.object_channel.bucket
}

output "function_name" {
  description = "Name of the worker Lambda function; null when no package was given (no function created)."
  value       = try(module.worker_function[0].function_name, null)
}

# Outputs below are not Manifest fields: Manifest.from_dict ignores keys it does
# not know, so `fsd` reads them only once its Manifest names them.

output "package_bucket" {
  description = "Bucket of the worker function's deployment zips (keys packages/...): this deployment's package bucket, or package_s3_bucket when given."
  value       = local.package_bucket
}

output "failure_queue_url" {
  description = "SQS queue receiving a record of every worker invocation that failed or expired in Lambda's async queue (on-failure destination; the record's requestPayload is the worker's event); null when no function is created."
  value       = try(module.worker_function[0].failure_queue_url, null)
}

output "failure_queue_arn" {
  description = "ARN of the failure queue; null when no function is created."
  value       = try(module.worker_function[0].failure_queue_arn, null)
}

output "worker_role_arn" {
  description = "Execution role of the worker function (the identity every worker runs as); null when no function is created."
  value       = try(module.worker_function[0].role_arn, null)
}

output "object_bucket" {
  description = "Bucket of the object channel's runs/ objects: the deployment bucket, or the S3 Express One Zone directory bucket with object_storage = \"express\"; null without the object channel (enable_object = false)."
  value       = var.enable_object ? module.object_channel.object_bucket : null
}

output "object_storage" {
  description = "Storage class of the object channel: \"standard\" or \"express\" (S3 Express One Zone: other request prices, see the cost model); null without the object channel."
  value       = var.enable_object ? var.object_storage : null
}
