# ---------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name (topics, queues, bucket, function, role). 1-24 lowercase letters, digits or hyphens, starting with a letter."
  type        = string
  default     = "fsd"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name_prefix))
    error_message = "name_prefix must be 1-24 lowercase letters, digits or hyphens and start with a letter."
  }
}

variable "region" {
  description = "AWS region of every resource (for the local emulator any valid region name, e.g. us-east-1)."
  type        = string
  default     = "us-east-1"
}

variable "endpoint" {
  description = "Base URL of an AWS API emulator (e.g. http://127.0.0.1:5000) used for every service; null on AWS. Setting it skips the credential and account checks."
  type        = string
  default     = null
}

variable "endpoints" {
  description = "Per-service endpoint overrides for local emulation, keyed by provider service name (cloudwatchlogs, iam, kms, lambda, s3, sns, sqs, sts); empty on AWS."
  type        = map(string)
  default     = {}
}

variable "tags" {
  description = "Extra tags for every resource (added to fsd:deployment = name_prefix)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------

variable "max_workers" {
  description = "Worker slots P: one SQS queue per slot (queue channel), the largest --workers a run may use. 1-1024."
  type        = number
  default     = 8

  validation {
    condition     = var.max_workers >= 1 && var.max_workers <= 1024 && floor(var.max_workers) == var.max_workers
    error_message = "max_workers must be an integer between 1 and 1024."
  }
}

variable "memory_mb" {
  description = "Memory of the worker function in MB (128-10240); Lambda's CPU share grows with it."
  type        = number
  default     = 2048

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "memory_mb must be between 128 and 10240."
  }
}

variable "timeout_s" {
  description = "Worker function timeout in seconds (1-900)."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 900
    error_message = "timeout_s must be between 1 and 900."
  }
}

variable "architecture" {
  description = "Instruction set of the worker function: arm64 (cheaper per GB-second) or x86_64. The package built by `fsd package` must match."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be arm64 or x86_64."
  }
}

variable "runtime" {
  description = "Lambda Python runtime of the worker function."
  type        = string
  default     = "python3.11"
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the worker function; -1 = no reservation (use the account's unreserved pool)."
  type        = number
  default     = -1
}

variable "max_event_age_s" {
  description = "Seconds a worker launch (an asynchronous invocation) may wait in Lambda's queue, e.g. while throttled, before Lambda drops it and reports it on the failure queue (60-21600). Async invocations are never retried."
  type        = number
  default     = 300

  validation {
    condition     = var.max_event_age_s >= 60 && var.max_event_age_s <= 21600 && floor(var.max_event_age_s) == var.max_event_age_s
    error_message = "max_event_age_s must be an integer between 60 and 21600."
  }
}

variable "log_retention_days" {
  description = "Days the worker function's CloudWatch logs are kept (short: logs are the only thing that accrues storage)."
  type        = number
  default     = 7
}

variable "package_file" {
  description = "Path of a local Lambda deployment zip; Terraform uploads it to the package bucket under packages/ and the function runs it. Takes precedence over package_s3_key."
  type        = string
  default     = null
}

variable "package_s3_bucket" {
  description = "A bucket of your own for the deployment zips (package_file is uploaded there, package_s3_key is read from there); null (default) = this deployment's package bucket, which Terraform creates."
  type        = string
  default     = null
}

variable "package_s3_key" {
  description = "Key of an already uploaded deployment zip in the package bucket (as uploaded by `fsd package --upload`). With neither package_file nor package_s3_key no function is created and function_name is null."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------

variable "enable_queue" {
  description = "Provision the queue channel (FSD-Inf-Queue): SNS topic(s) and one SQS queue per worker slot."
  type        = bool
  default     = true
}

variable "enable_object" {
  description = "Provision the object channel (FSD-Inf-Object): the workers may get and put run objects under runs/ in the deployment bucket (which every deployment has, for the run stage)."
  type        = bool
  default     = true
}

variable "object_storage" {
  description = "Storage of the object channel's runs/ objects: \"standard\" (the deployment bucket) or \"express\" (an S3 Express One Zone directory bucket in express_az_id: single-digit-ms requests, cheaper requests, one zone). Not supported by the local emulator: keep \"standard\" there."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(["standard", "express"], var.object_storage)
    error_message = "object_storage must be \"standard\" or \"express\"."
  }
}

variable "express_az_id" {
  description = "Availability zone id (e.g. use1-az4, not a zone name) of the directory bucket; required with object_storage = \"express\" (S3 Express One Zone is offered in some zones of some regions only). Put the workers near it: Lambda runs in every zone of the region."
  type        = string
  default     = null

  validation {
    condition     = var.express_az_id == null || can(regex("^[a-z0-9]+-az[0-9]+$", var.express_az_id))
    error_message = "express_az_id must be an availability zone id such as use1-az4."
  }
}

variable "topic_count" {
  description = "SNS topics of the queue channel (a sender publishes on topic src mod T); more topics raise the publish throughput limit. 1-16."
  type        = number
  default     = 1

  validation {
    condition     = var.topic_count >= 1 && var.topic_count <= 16 && floor(var.topic_count) == var.topic_count
    error_message = "topic_count must be an integer between 1 and 16."
  }
}

variable "message_retention_s" {
  description = "Seconds an undelivered activation message stays in a worker queue (60-1209600). Runs are short: keep it small."
  type        = number
  default     = 3600
}

variable "run_expiry_days" {
  description = "Days after which objects under runs/ in the bucket expire (a safety net: runs delete their objects)."
  type        = number
  default     = 1
}

variable "stage_expiry_days" {
  description = "Days after which objects under stage/ in the bucket expire (a backstop for runs whose coordinator died: a run deletes its stage at the end). 1-365."
  type        = number
  default     = 2

  validation {
    condition     = var.stage_expiry_days >= 1 && var.stage_expiry_days <= 365 && floor(var.stage_expiry_days) == var.stage_expiry_days
    error_message = "stage_expiry_days must be an integer between 1 and 365."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the deployment bucket even when it still holds objects (run data only: stage/ and runs/; packages live in the package bucket)."
  type        = bool
  default     = true
}

variable "package_force_destroy" {
  description = "Let `terraform destroy` delete the package bucket even when it still holds packages (all versions). Off by default: destroy stops at a non-empty package bucket; empty it or set this to true to tear down."
  type        = bool
  default     = false
}

variable "local_role_trustees" {
  description = "Local stack only (set by `fsd local up`): the emulator's operator, which starts the worker processes under the worker role as Lambda does on AWS. Leave empty on AWS."
  type        = list(string)
  default     = []
}
