"""bffgate: a Backend-for-Frontend session gateway."""

__version__ = "0.1.0"
