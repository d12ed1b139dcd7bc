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
