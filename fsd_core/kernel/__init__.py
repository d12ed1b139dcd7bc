"""The serial kernel (serial: the reference semantics every engine reproduces) and the
distinct-row and block machinery the workers share with it (rows)."""
