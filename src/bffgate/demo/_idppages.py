"""HTML pages of the development identity provider; every echoed value is escaped."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

BANNER = "DEVELOPMENT IDENTITY PROVIDER \N{EM DASH} NOT FOR PRODUCTION"

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f6f6f6; color: #222; }
.banner { background: #c00; color: #fff; font-size: 1.6rem; font-weight: 700;
  text-align: center; padding: 1rem; letter-spacing: .03em; }
main { max-width: 26rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem;
  border-radius: 8px; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
label { display: block; margin-top: 1rem; font-weight: 600; }
input[type=text], input[type=password] { width: 100%; box-sizing: border-box;
  padding: .5rem; font-size: 1rem; }
button { margin-top: 1.5rem; padding: .6rem 1.4rem; font-size: 1rem; cursor: pointer; }
.error { color: #a00; font-weight: 600; }
.hint { color: #555; font-size: .9rem; }
dt { font-weight: 600; margin-top: .8rem; }
dd { margin: .2rem 0 0; }
dd ul { margin: 0; padding-left: 1.2rem; }
code { word-break: break-all; background: #f0f0f0; padding: 0 .2rem; }
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<div class="banner" id="dev-banner">{escape(BANNER)}</div>'
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def login_page(
    params: dict[str, str], username: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The sign-in form, carrying the authorization request in hidden fields."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in params.items()
    )
    message = f'<p class="error" id="error">{escape(error)}</p>' if error else ""
    body = (
        f"{message}"
        '<form method="post" action="authorize">'
        f"{hidden}"
        '<label for="username">Username</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}"'
        ' autocomplete="username" required autofocus>'
        '<label for="password">Password (ignored)</label>'
        '<input type="password" id="password" name="password" autocomplete="off">'
        '<button type="submit" id="sign-in">Sign in</button>'
        "</form>"
        '<p class="hint">Any username of letters, digits, dot, dash or underscore signs in.'
        " The password is not checked.</p>"
    )
    return _page("Sign in", body, status)


def error_page(
    message: str,
    status: int = 400,
    *,
    received: str | None = None,
    registered: tuple[str, ...] = (),
    hint: str | None = None,
) -> HTMLResponse:
    """An error the provider must not redirect back to the client with; for a value that is
    not registered, it shows the received value beside the registered ones (all escaped)."""
    body = f'<p class="error" id="error">{escape(message)}</p>'
    if received is not None:
        values = "".join(f"<li><code>{escape(v)}</code></li>" for v in registered)
        body += (
            '<dl id="details"><dt>Received</dt>'
            f'<dd><code id="received">{escape(received)}</code></dd>'
            f'<dt>Registered</dt><dd><ul id="registered">{values or "<li>(none)</li>"}</ul></dd>'
            "</dl>"
        )
    if hint:
        body += f'<p class="hint" id="hint">{escape(hint)}</p>'
    return _page("Request rejected", body, status)


def signed_out_page() -> HTMLResponse:
    """Shown after logout when no post-logout redirect was requested."""
    return _page("Signed out", '<p id="signed-out">You have been signed out.</p>')
