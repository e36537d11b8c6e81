"""Reverse proxy to the configured upstreams: route table, header policy, streaming client."""
