"""Prices (prices: dated, sourced) and the cost and latency model with its recommendation and
calibration (model). Imports no channel: service limits come from `fsd_core.aws.limits`."""
