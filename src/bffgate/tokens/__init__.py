"""The route-token layer: which credential each proxied request carries to its upstream.

credential (``RouteCredential``: scheme + token, and ``authorization_headers``, what goes on
the upstream request) · modes (which token modes need a session, CSRF) · route_tokens
(``RouteTokens.for_route``: one branch per token mode) · user (the session's access token,
kept fresh by the session layer's single-flight refresh) · client (client-credentials
tokens: cached, single flight per process and across replicas) · exchange (RFC 8693) ·
dpop (RFC 9449 proofs).

Sits above session, oidc, proxy and store (beside edge and grants); never imports them back.
"""
