"""Reading the admin API's RFC 3339 timestamps back in tests."""

from __future__ import annotations

from datetime import datetime


def ts(text: str) -> float:
    """``2026-12-02T08:32:14.001Z`` as a Unix time."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
