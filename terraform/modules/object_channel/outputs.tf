# ---------------------------------------------------------------------------
# Object channel outputs
# ---------------------------------------------------------------------------

output "bucket" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "object_bucket" {
  description = "Bucket of the object channel's runs/ objects: the directory bucket with object_storage = \"express\", else this bucket."
  value       = local.express ? aws_s3_directory_bucket.express[0].bucket : aws_s3_bucket.this.id
}

output "express_bucket_arn" {
  description = "ARN of the directory bucket (arn:aws:s3express:...), or null with object_storage = \"standard\"."
  value       = try(aws_s3_directory_bucket.express[0].arn, null)
}
