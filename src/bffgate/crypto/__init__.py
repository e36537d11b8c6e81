"""Pure cryptographic helpers: the session cookie codec and token sealing (no I/O)."""
