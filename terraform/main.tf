# ---------------------------------------------------------------------------
# FSD-Inference: the cloud side of one deployment
#
#   queue channel   SNS topic(s) -> one SQS queue per worker slot (filter on dst)
#   bucket          the deployment bucket (run data, force-destroyed): stage/
#                   (every run's shards, inputs, reports, result), runs/ (object
#                   channel; or an S3 Express One Zone directory bucket)
#   package bucket  the worker function's zips (packages/), versioned, kept on destroy
#   worker function one Lambda function, its role, log group, async config
#                   (no retries; failures reported on the failure queue)
#
# The outputs (outputs.tf) are the deployment manifest `fsd` reads.
# ---------------------------------------------------------------------------

locals {
  create_function = var.package_file != null || var.package_s3_key != null

  # Packages live in their own bucket unless the operator names one.
  create_package_bucket = var.package_s3_bucket == null
  package_bucket        = local.create_package_bucket ? module.package_bucket[0].bucket : var.package_s3_bucket
}

module "queue_channel" {
  source = "./modules/queue_channel"
  count  = var.enable_queue ? 1 : 0

  name_prefix         = var.name_prefix
  topic_count         = var.topic_count
  queue_count         = var.max_workers
  message_retention_s = var.message_retention_s
  visibility_timeout  = var.timeout_s
  dead_letter         = !local.emulated
}

# The deployment bucket exists in every deployment: every cloud run, queue or
# object, stages its shards and inputs there (a Lambda has no other way to get
# them). enable_object adds the object channel's runs/ to the workers' grant: a
# prefix of this bucket, or the directory bucket with object_storage = "express".
module "object_channel" {
  source = "./modules/object_channel"

  name_prefix       = var.name_prefix
  run_expiry_days   = var.run_expiry_days
  stage_expiry_days = var.stage_expiry_days
  force_destroy     = var.force_destroy
  tls_only          = !local.emulated
  object_storage    = var.enable_object ? var.object_storage : "standard"
  express_az_id     = var.express_az_id
}

# The bucket used to be created only with enable_object or package_file.
moved {
  from = module.object_channel[0]
  to   = module.object_channel
}

# Packages apart from run data: the run-data bucket is force-destroyed with the
# deployment (force_destroy), the package bucket keeps uploaded zips
# (package_force_destroy, default false) and versions them.
module "package_bucket" {
  source = "./modules/package_bucket"
  count  = local.create_package_bucket ? 1 : 0

  name_prefix   = var.name_prefix
  force_destroy = var.package_force_destroy
  tls_only      = !local.emulated
}

# The deployment package, when given as a local file, travels through the
# package bucket (direct uploads to Lambda are limited to 50 MB; numpy + scipy
# come close).
resource "aws_s3_object" "package" {
  count = var.package_file != null ? 1 : 0

  bucket      = local.package_bucket
  key         = "packages/${filesha256(var.package_file)}.zip"
  source      = var.package_file
  source_hash = filemd5(var.package_file)
}

module "worker_function" {
  source = "./modules/worker_function"
  count  = local.create_function ? 1 : 0

  name                 = "${var.name_prefix}-worker"
  memory_mb            = var.memory_mb
  timeout_s            = var.timeout_s
  architecture         = var.architecture
  runtime              = var.runtime
  reserved_concurrency = var.reserved_concurrency
  log_retention_days   = var.log_retention_days
  max_event_age_s      = var.max_event_age_s

  trusted_principal_arns = var.local_role_trustees

  s3_bucket = var.package_file != null ? aws_s3_object.package[0].bucket : local.package_bucket
  s3_key    = var.package_file != null ? aws_s3_object.package[0].key : var.package_s3_key

  topic_arns         = try(module.queue_channel[0].topic_arns, [])
  queue_arns         = try(module.queue_channel[0].queue_arns, [])
  bucket_arn         = module.object_channel.bucket_arn
  stage_prefix       = "stage/"
  object_channel     = var.enable_object && var.object_storage == "standard"
  run_prefix         = "runs/"
  express_bucket_arn = var.enable_object ? module.object_channel.express_bucket_arn : null
  topic_kms_key      = try(module.queue_channel[0].kms_master_key_id, null)
}
