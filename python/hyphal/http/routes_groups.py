"""Routes on groups: the groups and their members, a group's files (upload, download with
``Range``, remove), sync with progress, and ``GET /events``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from hyphal.control.encoding import Json
from hyphal.errors import InvalidInput
from hyphal.http import downloads, models
from hyphal.http.framework import fastapi, responses
from hyphal.http.methods import Context, call
from hyphal.http.streams import GroupEvents, MethodEvents
from hyphal.http.uploads import FILE_FIELD, form_file

GroupRef = Annotated[str, fastapi.Path(description="The group's id (or a unique prefix of it) or its name.")]
FileName = Annotated[str, fastapi.Path(description="The file's name in the group (may hold `/`).")]
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}
}
BYTES_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    206: {
        "description": "The byte range asked for",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}
UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {"type": "string", "format": "binary"},
                    "name": {
                        "type": "string",
                        "description": "Its name in the group (default: the filename).",
                    },
                    "private": {"type": "string", "enum": ["true", "false"], "description": "Members only."},
                },
            }
        }
    },
}


def wants_events(request: fastapi.Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


def router(ctx: Context) -> fastapi.APIRouter:
    api = fastapi.APIRouter()
    node = ctx.node

    @api.get("/groups", tags=["groups"], summary="The groups this node is in (and those closed here)")
    async def group_list() -> list[Json]:
        result: list[Json] = await call(node, "group.list")
        return result

    @api.post("/groups", tags=["groups"], summary="Create a group; the result carries an invite")
    async def group_create(body: models.GroupCreate) -> Json:
        result: Json = await call(node, "group.create", body.params())
        return result

    @api.post("/groups/join", tags=["groups"], summary="Join a group with an invite URI")
    async def group_join(body: models.GroupJoin) -> Json:
        result: Json = await call(node, "group.join", body.params())
        return result

    @api.get("/groups/{group}", tags=["groups"], summary="A group and its members")
    async def group_info(group: GroupRef) -> Json:
        result: Json = await call(node, "group.info", {"group": group})
        return result

    @api.get("/groups/{group}/members", tags=["groups"], summary="A group's members")
    async def group_members(group: GroupRef) -> list[Json]:
        result: list[Json] = (await call(node, "group.info", {"group": group}))["member_list"]
        return result

    @api.get(
        "/groups/{group}/invite", tags=["groups"], summary="An invite URI (a secret: whoever has it joins)"
    )
    async def group_invite(group: GroupRef) -> Json:
        result: Json = await call(node, "group.invite", {"group": group})
        return result

    for verb, doc in (
        ("leave", "Leave a group (members drop this device's repo)"),
        ("close", "Stop running a group here without leaving it"),
        ("open", "Run a closed group again"),
    ):
        endpoint = _group_change(ctx, f"group.{verb}")
        api.add_api_route(
            f"/groups/{{group}}/{verb}", endpoint, methods=["POST"], tags=["groups"], summary=doc
        )

    @api.post("/groups/{group}/backup", tags=["groups"], summary="Ask a backup server to hold the group")
    async def group_backup(group: GroupRef, body: models.GroupBackup) -> Json:
        result: Json = await call(node, "group.backup", {"group": group, **body.params()})
        return result

    @api.get("/groups/{group}/files", tags=["files"], summary="Every file in every member's repo")
    async def files_list(group: GroupRef) -> list[Json]:
        result: list[Json] = await call(node, "files.list", {"group": group})
        return result

    @api.post(
        "/groups/{group}/files",
        tags=["files"],
        summary="Upload a file into this device's repo (multipart, streamed to disk)",
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def files_add(group: GroupRef, request: fastapi.Request) -> Json:
        async with form_file(request, ctx.data_dir) as form:
            name = form.fields.get("name") or form.filename
            if not name:
                raise InvalidInput("give the file a name: a `name` field, or a filename in its part")
            private = form.fields.get("private", "false")
            if private not in ("true", "false"):
                raise InvalidInput("the `private` field is true or false")
            params = {"group": group, "path": str(form.path), "name": name, "private": private == "true"}
            result: Json = await call(node, "files.add", params)
        return result

    @api.get(
        "/groups/{group}/files/{name:path}",
        tags=["files"],
        summary="Download a file (fetched from members first if need be); honours Range",
        response_class=responses.Response,
        responses=BYTES_DOC,
    )
    async def files_get(group: GroupRef, name: FileName, request: fastapi.Request) -> responses.Response:
        content = await downloads.group_file(node, node.group(group), name)
        return downloads.response(content, request.headers.get("range"))

    @api.delete(
        "/groups/{group}/files/{name:path}", tags=["files"], summary="Remove a file from this device's repo"
    )
    async def files_remove(group: GroupRef, name: FileName) -> Json:
        result: Json = await call(node, "files.remove", {"group": group, "name": name})
        return result

    @api.post(
        "/groups/{group}/sync",
        tags=["files"],
        summary="Sync the group; with Accept: text/event-stream, progress events then the result",
        responses=SSE_DOC,
    )
    async def sync(group: GroupRef, request: fastapi.Request) -> Json:
        if wants_events(request):
            return MethodEvents(node, "sync", {"group": group}, ctx.stopping)  # type: ignore[return-value]
        result: Json = await call(node, "sync", {"group": group})
        return result

    @api.get(
        "/events",
        tags=["events"],
        summary="Server-Sent Events: every change in every group (what `hyphal watch` shows)",
        response_class=responses.Response,
        responses=SSE_DOC,
    )
    async def events(
        group: Annotated[str | None, fastapi.Query(description="Only this group's events.")] = None,
    ) -> responses.Response:
        return GroupEvents(node, group, ctx.stopping)

    return api


def _group_change(ctx: Context, method: str) -> Callable[[str], Awaitable[Json]]:
    async def change(group: GroupRef) -> Json:
        result: Json = await call(ctx.node, method, {"group": group})
        return result

    change.__name__ = method.replace(".", "_")
    return change


__all__ = ["router"]
