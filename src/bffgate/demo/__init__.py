"""Development-only companions of ``bffgate demo``: an identity provider, an API and a page."""
