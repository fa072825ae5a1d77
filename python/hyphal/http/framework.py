"""The ``http`` extra's packages, imported through :func:`hyphal.extras.require`.

Every module of :mod:`hyphal.http` that needs FastAPI, Starlette, uvicorn,
sse-starlette or python-multipart takes them from here, so a node without the
extra gets :class:`~hyphal.errors.MissingExtra` naming it, never a bare
``ModuleNotFoundError`` (the names are real imports for the type checker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal.extras import require

FEATURE = "the HTTP API"

if TYPE_CHECKING:
    import fastapi as fastapi
    import fastapi.exceptions as fastapi_exceptions
    import fastapi.middleware.cors as cors
    import fastapi.openapi.utils as openapi_utils
    import fastapi.responses as responses
    import pydantic as pydantic
    import python_multipart as python_multipart
    import sse_starlette as sse_starlette
    import starlette.datastructures as datastructures
    import starlette.exceptions as starlette_exceptions
    import starlette.types as asgi
    import uvicorn as uvicorn
else:
    fastapi = require("http", "fastapi", FEATURE)
    fastapi_exceptions = require("http", "fastapi.exceptions", FEATURE)
    cors = require("http", "fastapi.middleware.cors", FEATURE)
    openapi_utils = require("http", "fastapi.openapi.utils", FEATURE)
    responses = require("http", "fastapi.responses", FEATURE)
    pydantic = require("http", "pydantic", FEATURE)
    python_multipart = require("http", "python_multipart", FEATURE)
    sse_starlette = require("http", "sse_starlette", FEATURE)
    datastructures = require("http", "starlette.datastructures", FEATURE)
    starlette_exceptions = require("http", "starlette.exceptions", FEATURE)
    asgi = require("http", "starlette.types", FEATURE)
    uvicorn = require("http", "uvicorn", FEATURE)

__all__ = [
    "FEATURE",
    "asgi",
    "cors",
    "datastructures",
    "fastapi",
    "fastapi_exceptions",
    "openapi_utils",
    "pydantic",
    "python_multipart",
    "responses",
    "sse_starlette",
    "starlette_exceptions",
    "uvicorn",
]
