"""Long responses: a control method's stream as Server-Sent Events or as bytes, and every group's
events at once (``GET /events``).

Each is an ASGI response that runs the method in a task for as long as the
client reads (:func:`hyphal.http.methods.running`); the client going away
cancels it, as closing the control socket cancels a ``watch``. The first item
is awaited before anything is sent, so a method that fails at once (no such
group, a bad key) still answers with its status and problem body; a failure
later is an ``error`` event (SSE) or a cut connection (bytes), since the
status line has gone.

SSE events are named for the control protocol's kinds: ``progress``,
``event``, ``result`` and ``error`` (a problem body), each ``data`` one JSON
object, so a client handles every stream the same way.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from hyphal.control.encoding import Json
from hyphal.errors import HyphalError
from hyphal.http import problems
from hyphal.http.framework import asgi, responses, sse_starlette
from hyphal.http.methods import Item, running, unwrap
from hyphal.node import Node

log = logging.getLogger("hyphal.http")

PING_SECONDS = 15
"""A comment line this often keeps proxies and browsers from timing an idle stream out."""
GROUPS_RESCAN = 1.0
"""Seconds between looks for groups started since ``/events`` began (the group manager has no
"group started" notification; comparing one small set a second costs nothing)."""


def problem_response(exc: BaseException) -> responses.JSONResponse:
    body = problems.error_body(exc)
    return responses.JSONResponse(body, status_code=body["status"], media_type=problems.PROBLEM_TYPE)


def log_failure(what: str, exc: BaseException) -> None:
    """A typed error is one line; anything else is a bug, logged with its traceback."""
    if isinstance(exc, HyphalError | OSError):
        log.info("http: %s failed: %s", what, exc)
    else:
        log.error("http: %s crashed", what, exc_info=exc)


def sse(kind: str, body: Any) -> sse_starlette.ServerSentEvent:
    return sse_starlette.ServerSentEvent(data=json.dumps(body, separators=(",", ":")), event=kind)


async def _first(items: MemoryObjectReceiveStream[Item]) -> Item | None:
    try:
        return await items.receive()
    except anyio.EndOfStream:
        return None


class MethodEvents(responses.Response):
    """A control method's items as SSE; the stream ends after its ``result`` or ``error``."""

    media_type = "text/event-stream"

    def __init__(self, node: Node, method: str, params: Json, stopping: anyio.Event) -> None:
        super().__init__()
        self._node, self._method, self._params, self._stopping = node, method, params, stopping

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        started = False
        try:
            async with running(self._node, self._method, self._params) as items:
                first = await _first(items)
                if first is not None and first.kind == "error":
                    raise first.body
                stream = sse_starlette.EventSourceResponse(
                    self._events(first, items), ping=PING_SECONDS, shutdown_event=self._stopping
                )
                started = True
                await stream(scope, receive, send)
        except Exception as raised:
            if started:
                raise
            # Before the stream began: a status and a problem body.
            exc = unwrap(raised)
            log_failure(self._method, exc)
            await problem_response(exc)(scope, receive, send)

    async def _events(
        self, first: Item | None, items: MemoryObjectReceiveStream[Item]
    ) -> AsyncIterator[sse_starlette.ServerSentEvent]:
        item = first
        while item is not None:
            if item.kind == "error":
                log_failure(self._method, item.body)
                yield sse("error", problems.error_body(item.body))
                return
            yield sse(item.kind, item.body)
            if item.kind == "result":
                return
            item = await _first(items)


class MethodBytes(responses.Response):
    """The base64 ``data`` of a method's events (``feed.cat``'s blocks), as raw bytes."""

    media_type = "application/octet-stream"

    def __init__(self, node: Node, method: str, params: Json) -> None:
        super().__init__()
        self._node, self._method, self._params = node, method, params

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        started = False
        try:
            async with running(self._node, self._method, self._params) as items:
                item = await _first(items)
                while item is not None and item.kind == "progress":
                    item = await _first(items)
                if item is not None and item.kind == "error":
                    raise item.body
                body = responses.StreamingResponse(self._bytes(item, items), media_type=self.media_type)
                started = True
                await body(scope, receive, send)
        except Exception as raised:
            if started:
                raise
            exc = unwrap(raised)
            log_failure(self._method, exc)
            await problem_response(exc)(scope, receive, send)

    async def _bytes(
        self, first: Item | None, items: MemoryObjectReceiveStream[Item]
    ) -> AsyncIterator[bytes]:
        item = first
        while item is not None and item.kind != "result":
            if item.kind == "error":
                # The status has gone: cutting the connection short is how the client learns.
                log_failure(self._method, item.body)
                raise anyio.BrokenResourceError(f"{self._method} failed mid-stream")
            if item.kind == "event":
                yield base64.b64decode(item.body.get("data", ""))
            item = await _first(items)


class GroupEvents(responses.Response):
    """``watch`` on every running group (or one), merged, each event tagged with its group's id."""

    media_type = "text/event-stream"

    def __init__(self, node: Node, group: str | None, stopping: anyio.Event) -> None:
        super().__init__()
        self._node, self._group, self._stopping = node, group, stopping

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        only: str | None = None
        if self._group is not None:
            try:
                only = self._node.group(self._group).id
            except Exception as exc:
                await problem_response(exc)(scope, receive, send)
                return
        out, merged = anyio.create_memory_object_stream[tuple[str, Json]](64)
        async with anyio.create_task_group() as tg, merged:
            # Every group running now is watched before the stream's first byte: a client that
            # has the response cannot miss a change it makes next.
            await self._start_watchers(tg, out, only, set())
            stream = sse_starlette.EventSourceResponse(
                self._events(merged), ping=PING_SECONDS, shutdown_event=self._stopping
            )
            await stream(scope, receive, send)
            tg.cancel_scope.cancel()

    async def _events(
        self, merged: MemoryObjectReceiveStream[tuple[str, Json]]
    ) -> AsyncIterator[sse_starlette.ServerSentEvent]:
        async for kind, body in merged:
            yield sse(kind, body)

    async def _start_watchers(
        self,
        tg: anyio.abc.TaskGroup,
        out: MemoryObjectSendStream[tuple[str, Json]],
        only: str | None,
        watched: set[str],
    ) -> None:
        for group in self._node.groups():
            if (only is None or group.id == only) and group.id not in watched:
                watched.add(group.id)
                await tg.start(self._watch, group.id, out, watched)
        tg.start_soon(self._rescan, tg, out, only, watched)

    async def _rescan(
        self,
        tg: anyio.abc.TaskGroup,
        out: MemoryObjectSendStream[tuple[str, Json]],
        only: str | None,
        watched: set[str],
    ) -> None:
        await anyio.sleep(GROUPS_RESCAN)
        await self._start_watchers(tg, out, only, watched)

    async def _watch(
        self,
        group_id: str,
        out: MemoryObjectSendStream[tuple[str, Json]],
        watched: set[str],
        *,
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        started = False
        try:
            async with running(self._node, "watch", {"group": group_id}) as items:
                async for item in items:
                    if item.kind == "progress" and not started:
                        # "watching": from here on no change of this group is missed.
                        started = True
                        task_status.started()
                        await out.send(("progress", {"group": group_id, **item.body}))
                    elif item.kind == "event":
                        await out.send(("event", {"group": group_id, **item.body}))
                    else:  # the group stopped (closed, left, or the node is stopping)
                        await out.send(("progress", {"group": group_id, "stopped": True}))
                        break
        finally:
            watched.discard(group_id)
            if not started:
                task_status.started()  # the group stopped before it was watched: nothing to wait for


__all__ = ["GroupEvents", "MethodBytes", "MethodEvents", "problem_response", "sse"]
