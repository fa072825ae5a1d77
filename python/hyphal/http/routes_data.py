"""Routes on the node's data outside groups: content-addressed blobs, and feeds shared by key.

A feed is named in the path by its key (64 hex) and, for a private feed, its
read secret in the ``r`` query parameter: ``/feeds/<key>?r=<secret>`` is the
share string ``hyphal://feed/<key>?r=<secret>`` as an HTTP path.
"""

from __future__ import annotations

from typing import Annotated

from hyphal.control.encoding import Json
from hyphal.control.params import Params
from hyphal.http import downloads, models
from hyphal.http.framework import fastapi, responses
from hyphal.http.methods import Context, call, params_of
from hyphal.http.routes_groups import BYTES_DOC, SSE_DOC, UPLOAD_BODY, wants_events
from hyphal.http.streams import MethodBytes, MethodEvents
from hyphal.http.uploads import body_file, form_file

BlobHash = Annotated[str, fastapi.Path(description="The blob's BLAKE3 hash, 64 hex digits.")]
FeedKey = Annotated[str, fastapi.Path(description="The feed's key, 64 hex digits.")]
ReadSecret = Annotated[
    str | None, fastapi.Query(description="A private feed's read secret (the share's r=).")
]
Timeout = Annotated[
    float | None,
    fastapi.Query(gt=0, le=600, description="Seconds to look for the feed's peers (default 20)."),
]
Start = Annotated[int | None, fastapi.Query(ge=0, description="The first block (default 0).")]


def share(key: str, r: str | None) -> str:
    return key if r is None else f"hyphal://feed/{key}?r={r}"


def router(ctx: Context) -> fastapi.APIRouter:
    api = fastapi.APIRouter()
    node = ctx.node

    @api.get("/blobs", tags=["blobs"], summary="Every blob in the node's store")
    async def blob_list() -> list[Json]:
        result: list[Json] = await call(node, "blob.list")
        return result

    @api.post(
        "/blobs",
        tags=["blobs"],
        summary="Add a blob (multipart, streamed to disk); kept until removed",
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def blob_add(request: fastapi.Request) -> Json:
        async with form_file(request, ctx.data_dir) as form:
            result: Json = await call(node, "blob.add", {"path": str(form.path)})
        return result

    @api.get(
        "/blobs/{hash}",
        tags=["blobs"],
        summary="Download a blob (fetched from connected peers first if need be); honours Range",
        response_class=responses.Response,
        responses=BYTES_DOC,
    )
    async def blob_get(hash: BlobHash, request: fastapi.Request) -> responses.Response:  # noqa: A002
        blob_hash = Params("blob.get", {"hash": hash}, frozenset({"hash"})).hex32("hash")
        content = await downloads.blob(node, blob_hash)
        return downloads.response(content, request.headers.get("range"))

    @api.delete("/blobs/{hash}", tags=["blobs"], summary="Drop this node's tag on a blob (GC frees it)")
    async def blob_remove(hash: BlobHash) -> Json:  # noqa: A002 (the path parameter's public name)
        result: Json = await call(node, "blob.rm", {"hash": hash})
        return result

    @api.post("/blobs/gc", tags=["blobs"], summary="Collect garbage now: delete blobs nothing keeps")
    async def blob_gc() -> Json:
        result: Json = await call(node, "blob.gc")
        return result

    @api.get("/feeds", tags=["feeds"], summary="Every feed in the node's store")
    async def feed_list() -> list[Json]:
        result: list[Json] = await call(node, "feed.list")
        return result

    @api.post("/feeds", tags=["feeds"], summary="Create a feed this node writes; the result has its share")
    async def feed_create(body: models.FeedCreate) -> Json:
        result: Json = await call(node, "feed.create", body.params())
        return result

    @api.get("/feeds/{key}", tags=["feeds"], summary="A feed in the store: length, writers, flags")
    async def feed_info(key: FeedKey) -> Json:
        result: Json = await call(node, "feed.info", {"key": key})
        return result

    @api.post(
        "/feeds/{key}/append",
        tags=["feeds"],
        summary="Append the request body (streamed) to a feed this node writes, in 64 KiB blocks",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def feed_append(key: FeedKey, request: fastapi.Request) -> Json:
        async with body_file(request, ctx.data_dir) as path:
            result: Json = await call(node, "feed.append", {"feed": key, "path": str(path)})
        return result

    @api.get(
        "/feeds/{key}/blocks",
        tags=["feeds"],
        summary="Blocks [start, end) as bytes (or, with Accept: text/event-stream, as events)",
        response_class=responses.Response,
        responses={200: {"content": {**BYTES_DOC[200]["content"], **SSE_DOC[200]["content"]}}},
    )
    async def feed_blocks(
        key: FeedKey,
        request: fastapi.Request,
        start: Start = None,
        end: Annotated[int | None, fastapi.Query(ge=0, description="The block to stop before.")] = None,
        r: ReadSecret = None,
        timeout: Timeout = None,
    ) -> responses.Response:
        params = params_of(feed=share(key, r), start=start, end=end, timeout=timeout)
        if wants_events(request):
            return MethodEvents(node, "feed.cat", params, ctx.stopping)
        return MethodBytes(node, "feed.cat", params)

    @api.get(
        "/feeds/{key}/follow",
        tags=["feeds"],
        summary="Server-Sent Events: every block from start on, live, as the writer appends",
        response_class=responses.Response,
        responses=SSE_DOC,
    )
    async def feed_follow(
        key: FeedKey, start: Start = None, r: ReadSecret = None, timeout: Timeout = None
    ) -> responses.Response:
        params = params_of(feed=share(key, r), start=start, timeout=timeout)
        return MethodEvents(node, "feed.follow", params, ctx.stopping)

    return api


__all__ = ["router"]
