# ---------------------------------------------------------------------------
# Package bucket inputs
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of the bucket name (\"<name_prefix>-pkg-\" plus a unique suffix chosen by Terraform)."
  type        = string
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds packages (every version). Off by default: `terraform destroy` then stops at a non-empty bucket instead of deleting uploaded packages."
  type        = bool
  default     = false
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted package version is kept before it expires (1-365)."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_days >= 1 && var.noncurrent_days <= 365
    error_message = "noncurrent_days must be between 1 and 365."
  }
}

variable "tls_only" {
  description = "Attach the bucket policy that denies every request not made over TLS. Keep true on AWS; the root module turns it off only for the local emulator (plain HTTP)."
  type        = bool
  default     = true
}
