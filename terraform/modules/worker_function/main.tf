# ---------------------------------------------------------------------------
# Worker function
#
# One Lambda function runs every worker; worker i invokes workers
# i*b+1 .. i*b+b asynchronously (launch tree), so async invocations must not
# be retried: a retried worker would publish its activations twice. A worker
# that fails (crash, timeout, out of memory) or whose event waited too long in
# Lambda's async queue is reported on the failure queue instead, which the
# coordinator can watch.
# ---------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  # checkov:skip=CKV_AWS_338: a year of worker logs costs storage at rest; retention is log_retention_days (default 7)
  # checkov:skip=CKV_AWS_158: a customer KMS key costs $1/month at rest; CloudWatch Logs encrypts with its own key
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

# The on-failure destination of asynchronous invocations: one record per failed
# worker (requestContext.condition = RetriesExhausted or EventAgeExceeded,
# requestPayload = the worker's event with its run_id and worker, responsePayload
# = the error). Lambda sends it with the function's execution role (iam.tf).
resource "aws_sqs_queue" "failures" {
  name                      = "${var.name}-failures"
  sqs_managed_sse_enabled   = true
  message_retention_seconds = var.failure_retention_s
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_117: no VPC: the workers only call public AWS APIs, and a VPC would need NAT or interface endpoints that cost money at rest
  # checkov:skip=CKV_AWS_272: code signing needs an AWS Signer profile; the package is built and uploaded by the operator's own `fsd package`
  # checkov:skip=CKV_AWS_173: the variables are malloc and thread settings, no secrets; Lambda encrypts them at rest with its own key, a customer key costs $1/month
  # checkov:skip=CKV_AWS_116: failed async invocations go to the on-failure destination (aws_lambda_function_event_invoke_config below), whose record says why and carries the event; a dead-letter queue as well would report every failure twice
  function_name = var.name
  role          = aws_iam_role.this.arn
  handler       = var.handler
  runtime       = var.runtime
  architectures = [var.architecture]
  memory_size   = var.memory_mb
  timeout       = var.timeout_s

  s3_bucket = var.s3_bucket
  s3_key    = var.s3_key

  reserved_concurrent_executions = var.reserved_concurrency

  # The local workers' environment (fsd_core/launch.py WORKER_ENV, kept equal by a test):
  # freed memory stays in the heap instead of being faulted in again every layer, and numpy's
  # BLAS runs no threads beside the layer loop.
  environment {
    variables = {
      GLIBC_TUNABLES       = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=67108864"
      OPENBLAS_NUM_THREADS = "1"
      OMP_NUM_THREADS      = "1"
    }
  }

  tracing_config {
    mode = "PassThrough"
  }

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy.this]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = var.max_event_age_s

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failures.arn
    }
  }
}
