"""Persistence of login records and sessions: the contract and its implementations."""
