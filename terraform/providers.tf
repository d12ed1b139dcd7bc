# ---------------------------------------------------------------------------
# Provider
#
# With `endpoint` (or `endpoints`) set, every AWS API this configuration uses
# goes to that URL (the local emulator started by `fsd local up`) and the
# checks that need a real AWS account are skipped. On AWS leave both unset.
# ---------------------------------------------------------------------------

locals {
  emulated = var.endpoint != null || length(var.endpoints) > 0

  # Services this configuration calls; `endpoints` overrides `endpoint` per service.
  services = ["cloudwatchlogs", "iam", "kms", "lambda", "s3", "sns", "sqs", "sts"]
  service_endpoints = {
    for s in local.services : s => lookup(var.endpoints, s, var.endpoint)
  }
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.emulated
  skip_requesting_account_id  = local.emulated
  skip_metadata_api_check     = local.emulated
  s3_use_path_style           = local.emulated

  dynamic "endpoints" {
    for_each = local.emulated ? [local.service_endpoints] : []
    content {
      cloudwatchlogs = endpoints.value.cloudwatchlogs
      iam            = endpoints.value.iam
      kms            = endpoints.value.kms
      lambda         = endpoints.value.lambda
      s3             = endpoints.value.s3
      sns            = endpoints.value.sns
      sqs            = endpoints.value.sqs
      sts            = endpoints.value.sts
    }
  }

  default_tags {
    tags = merge({ "fsd:deployment" = var.name_prefix }, var.tags)
  }
}
