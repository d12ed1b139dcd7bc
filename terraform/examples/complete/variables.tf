# ---------------------------------------------------------------------------
# Example inputs
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of every resource name (1-24 lowercase letters, digits or hyphens, starting with a letter)."
  type        = string
  default     = "fsd-example"
}

variable "region" {
  description = "AWS region of the deployment."
  type        = string
  default     = "us-east-1"
}

variable "package_s3_key" {
  description = "Key of the worker zip in the package bucket (printed by `fsd package --upload`); null = no function yet."
  type        = string
  default     = null
}

variable "express_az_id" {
  description = "Availability zone id for an S3 Express One Zone object channel (e.g. use1-az4); null = the standard bucket."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = { "fsd:example" = "complete" }
}
