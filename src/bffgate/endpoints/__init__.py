"""The gateway's endpoints, each given only what it uses (its ``…Deps``, built in app.py).

login · callback · user · logout · backchannel (/bff/*) · api (the proxy; client_stream:
its request body and client watch) · admin (/healthz, /readyz, /metrics, /admin/sessions) ·
session_cookie (the request's session, via SessionService.from_cookie) · session_end ·
cookies (Set-Cookie values) · return_url · deps (small dependencies shared by several).
"""
