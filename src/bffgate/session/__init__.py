"""Sessions and their tokens (no HTTP, no Redis, no OIDC).

model (values: tokens, session, login record, outcomes' inputs) · record (a session's bytes
in the store) · schedule (refresh point + injected jitter) · service (sessions: create,
from_cookie, load, replace_tokens, destroy) · logins (login records) · outcomes + refresh
(single-flight refresh and its closed outcome set) · ending (end_sessions).
"""
