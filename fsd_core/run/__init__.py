"""A run from the client's side: the coordinator, run records (SQLite), request prediction and
the cloud channels' clean-up."""
