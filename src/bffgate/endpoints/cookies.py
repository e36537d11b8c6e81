"""Set-Cookie values the gateway emits: session, login binding, and their deletion.

Every cookie: HttpOnly, Secure (unless explicitly off on loopback), Path=/, no Domain
(so the ``__Host-`` prefix holds). The session cookie is SameSite=Strict by default; the
login-binding cookie is SameSite=Lax because it must come back on the IdP's top-level
redirect to the callback.
"""

from __future__ import annotations


def _cookie(name: str, value: str, *, max_age: int | None, same_site: str, secure: bool) -> bytes:
    parts = [f"{name}={value}", "Path=/", "HttpOnly", f"SameSite={same_site.capitalize()}"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts).encode("latin-1")


class CookieWriter:
    def __init__(self, name: str, login_name: str, same_site: str, secure: bool,
                 login_max_age: int) -> None:
        self.name, self.login_name = name, login_name
        self.same_site, self.secure, self.login_max_age = same_site, secure, login_max_age

    def session(self, value: str, max_age: int) -> bytes:
        return _cookie(self.name, value, max_age=max_age, same_site=self.same_site,
                       secure=self.secure)

    def clear_session(self) -> bytes:
        return _cookie(self.name, "", max_age=0, same_site=self.same_site, secure=self.secure)

    def login_binding(self, value: str) -> bytes:
        return _cookie(self.login_name, value, max_age=self.login_max_age, same_site="lax",
                       secure=self.secure)
