"""Who computes what: partitioners (partition) and the communication plan, its cache and the
shard each worker holds (communication)."""
