"""The HTTP edge of both listeners, below the endpoints (no session, IdP or store).

Each listener is one raw-ASGI stack built once in app.py: request_context (request id,
client address, log context) → boundary (every failure becomes its answer: problem+json,
cookie clearing, audit, aborts, the 500 path) → admission (public only: forbidden methods,
duplicated headers and cookies) → dispatch (the gateway's own endpoints by exact path, the
proxy for the rest). Beside them: fields (header and cookie parsing, the duplicate rule),
client_address (trusted proxies), csrf (the check and the rejection), responses (the
auth-flow redirect).
"""
