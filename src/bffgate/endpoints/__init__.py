"""HTTP edge: the public endpoints of the gateway."""
