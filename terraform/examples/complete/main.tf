# ---------------------------------------------------------------------------
# Complete example: every channel, a worker function, remote-state-ready
#
# One FSD-Inference deployment with the queue and the object channel, eight
# worker slots and the worker function created from a zip that
# `fsd package --upload` (or `aws s3 cp`) put in the package bucket. Without
# package_s3_key the deployment is created without a function: apply once,
# upload the zip to the package_bucket output, then apply again with the key.
#
#   terraform init && terraform apply -var package_s3_key=packages/fsd-worker-....zip
#   terraform output -json > manifest.json && export FSD_MANIFEST=$PWD/manifest.json
#
# The root module configures the AWS provider itself (region, emulator
# endpoints, default tags), so this configuration has no provider block.
# ---------------------------------------------------------------------------

module "fsd" {
  source = "../../"

  name_prefix = var.name_prefix
  region      = var.region
  tags        = var.tags

  # Workers
  max_workers          = 8
  memory_mb            = 3008
  timeout_s            = 300
  architecture         = "arm64"
  runtime              = "python3.11"
  reserved_concurrency = -1
  log_retention_days   = 7
  max_event_age_s      = 300
  package_s3_key       = var.package_s3_key

  # Channels
  enable_queue        = true
  enable_object       = true
  topic_count         = 1
  message_retention_s = 3600
  run_expiry_days     = 1
  stage_expiry_days   = 2

  # The object channel on S3 Express One Zone instead: "express" and a zone id
  # where the region offers it (e.g. use1-az4), see var.express_az_id.
  object_storage = var.express_az_id != null ? "express" : "standard"
  express_az_id  = var.express_az_id

  # Buckets: run data goes with the deployment, packages stay
  force_destroy         = true
  package_force_destroy = false
}
