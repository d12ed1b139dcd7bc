"""The workers' side: one worker's layer loop (worker), the Lambda entry point (handler), the
launch tree and its launchers (launch, pool), and the run's stage (stage, s3_stage, payloads)."""
