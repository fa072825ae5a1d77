"""The FastAPI application: the routes, the error table applied, the OpenAPI document, the index page.

:func:`build_app` returns the ASGI app the server runs: :class:`~.guard.Guard`
(Host, Origin, token) around CORS (only when configured) around FastAPI.
"""

from __future__ import annotations

import logging
from typing import Any

from hyphal.errors import HyphalError
from hyphal.http import problems, routes_data, routes_groups, routes_node
from hyphal.http.framework import (
    asgi,
    cors,
    fastapi,
    fastapi_exceptions,
    openapi_utils,
    responses,
    starlette_exceptions,
)
from hyphal.http.guard import TOKEN_PARAM, Guard
from hyphal.http.methods import Context
from hyphal.http.streams import log_failure, problem_response

log = logging.getLogger("hyphal.http")

DESCRIPTION = """\
The local HTTP API of a hyphal node: everything the `hyphal` CLI does, over JSON.

Every request needs the node's token (`hyphal http token` prints it) as
`Authorization: Bearer <token>`; a GET may carry it as the `access_token` query
parameter instead (for `EventSource` and download links, which cannot set headers).
Errors are RFC 9457 problem bodies (`application/problem+json`) whose `code` is stable.
Live data (`/events`, a feed's `follow`, a value's `watch`, sync progress) is Server-Sent Events.
"""

INDEX = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>hyphal node</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
code { background: #f2f2f2; padding: 0 .2em; }
</style>
</head>
<body>
<h1>hyphal node</h1>
<p>This node serves its HTTP API here. The web app is not built yet; it is coming in a later release.</p>
<ul>
<li><a href="/docs">Interactive API documentation</a> (its scripts load from a CDN: it needs a network)</li>
<li><a href="/openapi.json">The OpenAPI document</a></li>
</ul>
<p id="token-note">Open this page with <code>hyphal open</code> to sign in:
the link carries the node's token once.</p>
<script>
// The token arrives once, in the fragment (never sent to a server or logged), is kept for this
// tab in sessionStorage, and is taken out of the address bar and history.
const found = new URLSearchParams(location.hash.slice(1)).get("token");
if (found) {
  sessionStorage.setItem("hyphal-token", found);
  history.replaceState(null, "", location.pathname);
}
if (sessionStorage.getItem("hyphal-token")) {
  document.getElementById("token-note").textContent = "Signed in: this tab holds the node's token.";
}
</script>
</body>
</html>
"""

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {
            "type": "string",
            "enum": sorted(
                {p.code for p in problems.ERROR_TABLE.values()}
                | set(problems.HTTP_PROBLEMS)
                | {problems.HTTP_ERROR.code}
            ),
        },
        "error": {
            "type": "string",
            "description": "The error's class name (for logs, not for switching on).",
        },
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def build_app(ctx: Context, *, token: str, port: int, cors_origins: tuple[str, ...] = ()) -> asgi.ASGIApp:
    app = fastapi.FastAPI(title="hyphal node", description=DESCRIPTION, version="1", redoc_url=None)
    for module in (routes_node, routes_groups, routes_data):
        app.include_router(module.router(ctx))
    _handle_errors(app)

    @app.get("/", include_in_schema=False)
    async def index() -> responses.HTMLResponse:
        return responses.HTMLResponse(INDEX)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    inner: asgi.ASGIApp = app
    if cors_origins:
        inner = cors.CORSMiddleware(
            app,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["authorization", "content-type", "range"],
            expose_headers=["content-range", "content-length", "accept-ranges", "etag"],
        )
    return Guard(inner, token=token, port=port, cors_origins=cors_origins)


def _handle_errors(app: fastapi.FastAPI) -> None:
    async def hyphal_error(request: fastapi.Request, exc: Exception) -> responses.Response:
        log_failure(f"{request.method} {request.url.path[:120]!r}", exc)
        return problem_response(exc)

    async def invalid_request(request: fastapi.Request, exc: Exception) -> responses.Response:
        assert isinstance(exc, fastapi_exceptions.RequestValidationError)
        found = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        first = found[0] if found else {"loc": [], "msg": "invalid"}
        detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
        body = problems.body(problems.HTTP_PROBLEMS["invalid_request"], detail, errors=found)
        return responses.JSONResponse(body, status_code=422, media_type=problems.PROBLEM_TYPE)

    async def http_error(request: fastapi.Request, exc: Exception) -> responses.Response:
        assert isinstance(exc, starlette_exceptions.HTTPException)
        by_status = {p.status: p for p in problems.HTTP_PROBLEMS.values()}
        problem = by_status.get(
            exc.status_code, problems.Problem(exc.status_code, "http_error", "HTTP error")
        )
        body = problems.body(problem, str(exc.detail))
        return responses.JSONResponse(
            body, status_code=exc.status_code, media_type=problems.PROBLEM_TYPE, headers=exc.headers
        )

    app.add_exception_handler(HyphalError, hyphal_error)
    app.add_exception_handler(OSError, hyphal_error)
    app.add_exception_handler(fastapi_exceptions.RequestValidationError, invalid_request)
    app.add_exception_handler(starlette_exceptions.HTTPException, http_error)
    app.add_exception_handler(Exception, hyphal_error)


def _openapi(app: fastapi.FastAPI) -> dict[str, Any]:
    """FastAPI's document, with our problem bodies for every error and the two ways to send the token."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    doc = openapi_utils.get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "`hyphal http token` prints it."},
        "query": {"type": "apiKey", "in": "query", "name": TOKEN_PARAM, "description": "GET requests only."},
    }
    doc["security"] = [{"bearer": []}, {"query": []}]
    problem = {"content": {problems.PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            answers.pop("422", None)
            for status, what in (
                ("400", "Invalid input"),
                ("401", "No valid token"),
                ("403", "Refused: a foreign Host or Origin, or a key that may not do this"),
                ("404", "Not here, or no peer has it"),
                ("422", "The request does not match its schema"),
                ("default", "Any other error, as a problem body"),
            ):
                answers.setdefault(status, {"description": what, **problem})
    app.openapi_schema = doc
    return doc


__all__ = ["build_app"]
