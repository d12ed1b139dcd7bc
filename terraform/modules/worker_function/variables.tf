# ---------------------------------------------------------------------------
# Worker function inputs
# ---------------------------------------------------------------------------

variable "name" {
  description = "Function name (also names its role, log group and failure queue)."
  type        = string
}

variable "memory_mb" {
  description = "Memory in MB (128-10240)."
  type        = number
  default     = 2048
}

variable "timeout_s" {
  description = "Timeout in seconds (1-900)."
  type        = number
  default     = 300
}

variable "architecture" {
  description = "arm64 or x86_64."
  type        = string
  default     = "arm64"
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.11"
}

variable "handler" {
  description = "Entry point inside the package."
  type        = string
  default     = "fsd_core.engine.handler.handler"
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions; -1 = none."
  type        = number
  default     = -1
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
  default     = 7
}

variable "s3_bucket" {
  description = "Bucket of the deployment zip."
  type        = string
}

variable "s3_key" {
  description = "Key of the deployment zip."
  type        = string
}

variable "topic_arns" {
  description = "SNS topics the workers publish to (queue channel); empty = no SNS permission."
  type        = list(string)
  default     = []
}

variable "queue_arns" {
  description = "Worker queues the workers receive from and delete in (queue channel); empty = no SQS permission."
  type        = list(string)
  default     = []
}

variable "bucket_arn" {
  description = "ARN of the deployment bucket (stage/ for every run, runs/ for the object channel); null = no S3 permission."
  type        = string
  default     = null
}

variable "stage_prefix" {
  description = "Key prefix of the run stage in the bucket (shards, inputs, reports, result under stage/{run}/); the workers may get and put keys under it in every deployment."
  type        = string
  default     = "stage/"
}

variable "model_prefix" {
  description = "Key prefix of the deployed models' shards (models/{model}-{plan}/, written by fsd model deploy); the workers may only get keys under it."
  type        = string
  default     = "models/"
}

variable "object_channel" {
  description = "The object channel is provisioned: the workers may also get and put keys under run_prefix."
  type        = bool
  default     = false
}

variable "run_prefix" {
  description = "Key prefix of the object channel's run objects (runs/{run}/l{layer}/{src}-{dst}); used when object_channel is true."
  type        = string
  default     = "runs/"
}

variable "express_bucket_arn" {
  description = "ARN of the object channel's S3 Express One Zone directory bucket (arn:aws:s3express:...); the workers may open ReadWrite sessions on it. null = none (object_channel then uses run_prefix in bucket_arn)."
  type        = string
  default     = null
}

variable "topic_kms_key" {
  description = "KMS key of the topics. A customer key ARN gets GenerateDataKey/Decrypt for publishing; an alias (alias/aws/sns) needs no grant."
  type        = string
  default     = null
}

variable "max_event_age_s" {
  description = "Seconds an asynchronous invocation (a worker launch) may wait in Lambda's queue, e.g. while throttled, before it is dropped and reported on the failure queue (60-21600)."
  type        = number
  default     = 300

  validation {
    condition     = var.max_event_age_s >= 60 && var.max_event_age_s <= 21600
    error_message = "max_event_age_s must be between 60 and 21600."
  }
}

variable "failure_retention_s" {
  description = "Seconds a failure record stays in the failure queue (60-1209600)."
  type        = number
  default     = 1209600
}

variable "trusted_principal_arns" {
  description = "IAM principals besides Lambda that may assume the worker role. Only the local stack sets it (its operator starts the worker processes under the role); leave empty on AWS."
  type        = list(string)
  default     = []
}
