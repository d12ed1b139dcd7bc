# ---------------------------------------------------------------------------
# Example outputs: the root module's, one for one, so `terraform output -json`
# here is a deployment manifest `fsd` reads (FSD_MANIFEST).
# ---------------------------------------------------------------------------

output "region" {
  description = "AWS region of the deployment."
  value       = module.fsd.region
}

output "endpoint" {
  description = "Emulator base URL, or null on AWS."
  value       = module.fsd.endpoint
}

output "max_workers" {
  description = "Worker slots: the largest number of workers a run may use."
  value       = module.fsd.max_workers
}

output "topic_arns" {
  description = "SNS topic ARNs of the queue channel."
  value       = module.fsd.topic_arns
}

output "queue_urls" {
  description = "SQS queue URL per worker slot (index = worker id)."
  value       = module.fsd.queue_urls
}

output "bucket" {
  description = "The deployment bucket (run data: stage/ and runs/)."
  value       = module.fsd.bucket
}

output "function_name" {
  description = "Name of the worker function; null without a package."
  value       = module.fsd.function_name
}

output "package_bucket" {
  description = "Bucket of the worker function's deployment zips."
  value       = module.fsd.package_bucket
}

output "failure_queue_url" {
  description = "SQS queue receiving a record of every failed worker invocation; null without a function."
  value       = module.fsd.failure_queue_url
}

output "failure_queue_arn" {
  description = "ARN of the failure queue; null without a function."
  value       = module.fsd.failure_queue_arn
}

output "worker_role_arn" {
  description = "Execution role of the worker function; null without a function."
  value       = module.fsd.worker_role_arn
}

output "object_bucket" {
  description = "Bucket of the object channel's runs/ objects (the directory bucket with S3 Express One Zone)."
  value       = module.fsd.object_bucket
}

output "object_storage" {
  description = "Storage class of the object channel: standard or express."
  value       = module.fsd.object_storage
}
