"""Access token, CSRF protection and Host checking, as one ASGI middleware.

* **Token** (``serve --token``, required off loopback): every request carries it as ``?token=``
  (once: the app answers with a cookie and, for a page, a redirect to the same address without
  it), as the ``nm_token`` cookie, or as ``Authorization: Bearer <token>``. None: 401; a wrong
  one: 403.
* **CSRF**: every state-changing request (POST, PUT, PATCH, DELETE) must carry the per-browser
  CSRF token, from the ``nm_csrf`` cookie, back in the ``X-CSRF-Token`` header (pages send it with
  every HTMX request) or in a ``csrf_token`` form field; a cross-site ``Origin`` is refused. A
  request authenticated by an ``Authorization: Bearer`` header is not exposed to CSRF (a browser
  never adds that header by itself) and needs no CSRF token.
* **Host**: without a token the app answers only to the loopback names and the ``--host`` it was
  started with, so a web page cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, parse_qsl, urlencode

from markupsafe import escape

__all__ = ["SecurityMiddleware", "TOKEN_COOKIE", "CSRF_COOKIE", "CSRF_HEADER", "CSRF_FIELD", "LOOPBACK_HOSTS"]

TOKEN_COOKIE = "nm_token"
CSRF_COOKIE = "nm_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
#: on every answer: no framing by other sites (clickjacking; the app frames its own brain viewers), no type sniffing, no Referer
#: carrying an address out
_HARDENING = [(b"x-frame-options", b"SAMEORIGIN"), (b"x-content-type-options", b"nosniff"),
              (b"referrer-policy", b"no-referrer")]
# a part's header lines are never empty: the first blank line ends them (a greedy "any line" also ran
# over a CRLF file's last blank line and took the closing boundary for the token)
_MULTIPART_FIELD = re.compile(rb'name="csrf_token"\r\n(?:[^\r\n]+\r\n)*\r\n([A-Za-z0-9_\-]{16,200})\r\n')


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    def __init__(self, app, *, token: str | None, allowed_hosts: set[str] | None = None):
        self.app = app
        self.token = token
        self.allowed_hosts = {h.lower().strip("[]") for h in (allowed_hosts or set())} | set(LOOPBACK_HOSTS)

    # ------------------------------------------------------------------ responses
    @staticmethod
    async def _reply(send, status: int, message: str, *, api: bool, extra_headers=()) -> None:
        if api:
            body = json.dumps({"detail": message}).encode()
            ctype = b"application/json"
        else:
            body = (f"<!doctype html><meta charset=utf-8><title>{status}</title>"
                    f"<h1>{status}</h1><p>{escape(message)}</p>").encode()
            ctype = b"text/html; charset=utf-8"
        headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()), *extra_headers]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        path = scope.get("path", "")
        api = path.startswith("/api/")
        method = scope.get("method", "GET").upper()
        cookies: dict[str, str] = {}
        if "cookie" in headers:
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header counts as no cookies
                jar = SimpleCookie()
            cookies = {k: m.value for k, m in jar.items()}
        set_cookies: list[str] = []

        if self.token is None and _host_name(headers.get("host", "")) not in self.allowed_hosts:
            return await self._reply(send, 400, "unexpected Host header; open the address that serve printed", api=api)

        bearer_ok = False
        if self.token is not None:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            auth = headers.get("authorization", "")
            supplied_bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            supplied_query = query.get("token", [None])[0]
            supplied = supplied_bearer or supplied_query or cookies.get(TOKEN_COOKIE)
            if not supplied:
                return await self._reply(send, 401, "this server needs its access token: open the address that "
                                                    "serve printed (with ?token=...) or send 'Authorization: Bearer <token>'",
                                         api=api, extra_headers=[(b"www-authenticate", b"Bearer")])
            if not hmac.compare_digest(supplied.encode(), self.token.encode()):
                return await self._reply(send, 403, "wrong access token", api=api)
            bearer_ok = supplied_bearer is not None
            if supplied_query is not None:
                set_cookies.append(f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict")
                if method == "GET" and not api:
                    # the token leaves the address bar (and the history) at once
                    rest = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                         keep_blank_values=True) if k != "token"]
                    location = path + ("?" + urlencode(rest) if rest else "")
                    headers_out = [(b"location", location.encode("latin-1")), (b"content-length", b"0"),
                                   *[(b"set-cookie", c.encode("latin-1")) for c in set_cookies]]
                    await send({"type": "http.response.start", "status": 303, "headers": headers_out})
                    await send({"type": "http.response.body", "body": b""})
                    return

        csrf = cookies.get(CSRF_COOKIE)
        if not csrf or not re.fullmatch(r"[A-Za-z0-9_\-]{16,200}", csrf):
            csrf = secrets.token_urlsafe(32)
            set_cookies.append(f"{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict")
            csrf_known = False
        else:
            csrf_known = True
        scope.setdefault("state", {})["csrf_token"] = csrf

        if method in _UNSAFE and not bearer_ok:
            origin = headers.get("origin")
            if origin and origin != "null":
                origin_host = origin.split("://", 1)[-1]
                if origin_host.lower() != headers.get("host", "").lower():
                    return await self._reply(send, 403, "cross-site request refused (Origin does not match)", api=api)
            sent = headers.get(CSRF_HEADER)
            if sent is None:
                ctype = headers.get("content-type", "")
                if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                    body, receive = await self._buffer(receive)
                    sent = self._form_token(body, ctype)
            if not (csrf_known and sent and hmac.compare_digest(sent.encode(), csrf.encode())):
                return await self._reply(send, 403, "CSRF token missing or wrong: reload the page and try again "
                                                    "(API clients: send the nm_csrf cookie's value as X-CSRF-Token, "
                                                    "or authenticate with 'Authorization: Bearer <token>')", api=api)

        extra = [*_HARDENING, *((b"set-cookie", c.encode("latin-1")) for c in set_cookies)]

        async def send_with_cookies(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        return await self.app(scope, receive, send_with_cookies)

    @staticmethod
    async def _buffer(receive):
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return body, replay

    @staticmethod
    def _form_token(body: bytes, ctype: str) -> str | None:
        if ctype.startswith("application/x-www-form-urlencoded"):
            return parse_qs(body.decode("latin-1")).get(CSRF_FIELD, [None])[0]
        m = _MULTIPART_FIELD.search(body)
        return m.group(1).decode() if m else None
