"""OpenID Connect relying party: PKCE, discovery + JWKS, ID-token checks, token endpoint calls."""
