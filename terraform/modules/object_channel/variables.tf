# ---------------------------------------------------------------------------
# Object channel inputs
# ---------------------------------------------------------------------------

variable "name_prefix" {
  description = "Prefix of the bucket name (a unique suffix is appended by AWS/Terraform)."
  type        = string
}

variable "run_expiry_days" {
  description = "Days after which objects under runs/ expire (runs delete their own objects; this is the safety net)."
  type        = number
  default     = 1
}

variable "stage_expiry_days" {
  description = "Days after which objects under stage/ expire (runs delete their stage; this is the backstop for a coordinator that died)."
  type        = number
  default     = 2
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds objects."
  type        = bool
  default     = true
}

variable "tls_only" {
  description = "Attach the bucket policy that denies every request not made over TLS. Keep true on AWS; the root module turns it off only for the local emulator (plain HTTP)."
  type        = bool
  default     = true
}

variable "object_storage" {
  description = "Where the object channel's runs/ objects live: \"standard\" (this bucket) or \"express\" (an S3 Express One Zone directory bucket in express_az_id)."
  type        = string
  default     = "standard"

  validation {
    condition     = contains(["standard", "express"], var.object_storage)
    error_message = "object_storage must be \"standard\" or \"express\"."
  }
}

variable "express_az_id" {
  description = "Availability zone id (not name) of the directory bucket, e.g. use1-az4; required with object_storage = \"express\". Put the workers' region's S3 Express zone here."
  type        = string
  default     = null

  validation {
    condition     = var.express_az_id == null || can(regex("^[a-z0-9]+-az[0-9]+$", var.express_az_id))
    error_message = "express_az_id must be an availability zone id such as use1-az4."
  }
}
