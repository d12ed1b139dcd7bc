# ---------------------------------------------------------------------------
# Queue channel inputs
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of the topic and queue names."
  type        = string
}

variable "topic_count" {
  description = "Number of SNS topics (1-16); every topic is subscribed by every worker queue."
  type        = number
  default     = 1
}

variable "queue_count" {
  description = "Number of worker slots: one SQS queue each, queue i receives messages whose dst attribute is \"i\"."
  type        = number
}

variable "message_retention_s" {
  description = "Seconds a message stays in a worker queue (60-1209600)."
  type        = number
  default     = 3600
}

variable "visibility_timeout" {
  description = "Seconds a received message stays invisible before redelivery (0-43200); at least the worker timeout."
  type        = number
  default     = 300
}

variable "max_receive_count" {
  description = "Receives after which a message moves to the dead-letter queue."
  type        = number
  default     = 5
}

variable "kms_master_key_id" {
  description = "KMS key of the SNS topics. The AWS-managed alias/aws/sns costs nothing at rest and needs no grant for same-account publishers; a customer key ARN ($1/month) also works."
  type        = string
  default     = "alias/aws/sns"
}

variable "dead_letter" {
  description = "Give the worker queues a shared dead-letter queue (redrive after max_receive_count receives). The root module turns it off only for the local emulator: moto 5.2 echoes the redrive policy re-serialised, so every apply would rewrite it, and its SetQueueAttributes then drops the queue policy."
  type        = bool
  default     = true
}
