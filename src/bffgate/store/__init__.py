"""Persistence of login records and sessions: the contracts by concern (base) and the two
backends (memory, redis + redis_lock)."""
