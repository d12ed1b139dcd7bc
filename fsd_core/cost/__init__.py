"""The cost and latency model: prices (dated, sourced), pricing, exact counts, parameters (each
with its source), workloads, latency, the recommendation and calibration; `model` gathers the
public names. Imports no channel: service limits come from `fsd_core.aws.limits`."""
