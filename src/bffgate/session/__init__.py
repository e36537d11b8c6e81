"""Sessions and their tokens: model, service, refresh coordination (no HTTP, no Redis)."""
