"""The gate every request passes first: Host, Origin and the bearer token (an ASGI middleware).

- **Host.** A DNS-rebinding page reaches 127.0.0.1 under its own host name,
  so the Host header must be an IP literal or ``localhost``, with this
  server's port: no name an attacker controls resolves past this check.
- **Origin.** Browsers send it on cross-origin requests (and on same-origin
  ones that change things); one that is not this server's own origin, nor
  configured in ``[http] cors_origins``, is refused, so another site's page
  can neither read nor change anything even if it guessed the token.
- **Token.** ``Authorization: Bearer <token>`` on every request but the
  public pages (the index, the docs and the OpenAPI document). An
  ``EventSource``, a download link and a ``<video src>`` cannot set headers,
  so a GET may carry it as the ``access_token`` query parameter instead
  (RFC 6750 §2.3). We chose that over a cookie: a cookie rides along on every
  request the browser makes, which makes cross-site request forgery the
  problem to solve, while a parameter is only where the app put it. The
  parameter's costs are held down here: the access log is off, every
  response says ``Referrer-Policy: no-referrer``, and it works on GET only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from hyphal.http import problems
from hyphal.http.framework import asgi, datastructures

log = logging.getLogger("hyphal.http")

PUBLIC_PATHS = frozenset({"/", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
TOKEN_PARAM = "access_token"
SECURITY_HEADERS = [
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``host[:port]`` as (host, port); None if it does not parse."""
    try:
        parts = urlsplit(f"//{value}")
        return parts.hostname or "", parts.port
    except ValueError:
        return None


def local_host(host: str) -> bool:
    """An IP literal or ``localhost``: names no DNS answer of an attacker's can stand for."""
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Guard:
    """Refuses what fails the checks above with a problem body; passes the rest to ``app``."""

    def __init__(self, app: asgi.ASGIApp, *, token: str, port: int, cors_origins: Iterable[str]) -> None:
        self._app = app
        self._token = token.encode()
        self._port = port
        self._cors = frozenset(o.rstrip("/") for o in cors_origins)

    def host_allowed(self, value: str | None) -> bool:
        split = _split_host(value) if value else None
        return split is not None and local_host(split[0]) and split[1] == self._port

    def origin_allowed(self, origin: str) -> bool:
        if origin in self._cors:
            return True
        parts = urlsplit(origin)
        return parts.scheme == "http" and not parts.path and self.host_allowed(parts.netloc)

    def _token_ok(self, scope: asgi.Scope, headers: datastructures.Headers) -> bool:
        given = headers.get("authorization", "")
        scheme, _, credentials = given.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return hmac.compare_digest(credentials.strip().encode(), self._token)
        if scope["method"] in ("GET", "HEAD"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            for value in query.get(TOKEN_PARAM, [])[:1]:
                return hmac.compare_digest(value.encode(), self._token)
        return False

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = datastructures.Headers(scope=scope)
        path: str = scope["path"]
        if not self.host_allowed(headers.get("host")):
            log.warning("http: refused a request for host %r (DNS rebinding?)", headers.get("host", "")[:80])
            await _refuse(send, "host_refused", "this API answers only to an IP address or localhost")
            return
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin):
            log.warning("http: refused a cross-site request from %r", origin[:80])
            detail = (
                "requests from other sites are refused; add the origin to [http] cors_origins to allow it"
            )
            await _refuse(send, "origin_refused", detail)
            return
        preflight = scope["method"] == "OPTIONS" and origin is not None and origin in self._cors
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if not (public or preflight or self._token_ok(scope, headers)):
            await _refuse(
                send,
                "token_required",
                "send the token as `Authorization: Bearer <token>` (`hyphal http token` prints it)",
                [(b"www-authenticate", b'Bearer realm="hyphal"')],
            )
            return

        async def secured(message: asgi.Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        await self._app(scope, receive, secured)


async def _refuse(
    send: asgi.Send, code: str, detail: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    problem = problems.HTTP_PROBLEMS[code]
    payload = json.dumps(problems.body(problem, detail)).encode()
    headers = [
        (b"content-type", problems.PROBLEM_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


__all__ = ["PUBLIC_PATHS", "TOKEN_PARAM", "Guard", "local_host"]
