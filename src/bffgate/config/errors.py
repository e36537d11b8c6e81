"""Configuration problems: collected one per key, then raised together as one ConfigError."""

from __future__ import annotations


class ConfigError(Exception):
    """Invalid configuration; ``messages`` lists every problem, each naming its key."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {m}" for m in messages))


class Collector:
    """Accumulates problems so every one is reported, not just the first."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.keys: list[str] = []

    def add(self, key: str, problem: str) -> None:
        self.keys.append(key)
        self.messages.append(f"{key}: {problem}")

    def merge_new(self, later: Collector) -> None:
        """Take ``later``'s problems except those about a key (or an item of one) that
        already has a problem here: one cause, one line (an unset ``env:`` variable is not
        also reported as a key that is "required" or "too short")."""
        reported = tuple(self.keys)
        for key, message in zip(later.keys, later.messages, strict=True):
            if any(key == r or key.startswith((r + "[", r + ".")) for r in reported):
                continue
            self.keys.append(key)
            self.messages.append(message)
