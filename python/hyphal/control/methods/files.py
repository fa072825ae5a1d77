"""Control methods about a group's files: add, list, get, remove, sync and watch."""

from __future__ import annotations

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, Throttle, group_of, method
from hyphal.groups.events import GroupEvent, SyncProgress
from hyphal.groups.group import Group


@method("files.add", "group", "path", "name", "private")
async def files_add(call: Call) -> Json:
    group, params = group_of(call), call.params
    added = await group.add_file(params.path("path"), params.opt_text("name"), private=params.flag("private"))
    return {"group": group.id, **encoding.file_info(added, local=True)}


@method("files.list", "group")
async def files_list(call: Call) -> list[Json]:
    group = group_of(call)
    return [encoding.file_info(f, local=group.has_blob(f)) for f in group.files()]


@method("files.get", "group", "name", "dest")
async def files_get(call: Call) -> Json:
    group, params = group_of(call), call.params
    dest = params.path("dest")
    file = group.lookup(params.text("name"))
    throttle, done = Throttle(call.emit), 0

    def moved(n: int) -> None:
        nonlocal done
        done += n
        throttle({"name": file.name, "bytes_done": done, "bytes_total": file.size})

    async def fetch_and_export() -> Json:
        await group.fetch(file, moved)
        exported = await group.export(file.name, dest)
        return {**encoding.file_info(exported, local=True), "dest": str(dest)}

    return await throttle.run(fetch_and_export)


@method("files.remove", "group", "name")
async def files_remove(call: Call) -> Json:
    group = group_of(call)
    name = call.params.text("name")
    group.remove(name)
    return {"group": group.id, "name": name}


@method("sync", "group")
async def sync(call: Call) -> Json:
    group = group_of(call)
    throttle = Throttle(call.emit)

    def progress(p: SyncProgress) -> None:
        throttle(encoding.sync_progress(p))

    async def run() -> Json:
        result = await group.sync_all(progress)
        return {
            "group": group.id,
            **encoding.sync_result(result),
            "files_fetched": result.files_fetched,
            "reached": list(result.reached),
            "unreachable": list(result.unreachable),
            "fetched_nothing_known": result.fetched_nothing_known,
        }

    return await throttle.run(run)


@method("watch", "group")
async def watch(call: Call) -> None:
    """Stream every change as an event until the client goes (or the group stops)."""
    group = group_of(call)
    send, receive = anyio.create_memory_object_stream[GroupEvent]()
    async with anyio.create_task_group() as tg, receive:
        await tg.start(_pump_events, group, send)
        await call.emit("progress", {"watching": group.id, "name": group.name})
        async for item in receive:
            await call.emit("event", encoding.event(item))


async def _pump_events(
    group: Group, send: MemoryObjectSendStream[GroupEvent], *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    async with send:
        events = group.watch()
        task_status.started()
        # The generator's first step registers its watcher, and runs before the caller of
        # `start` resumes: a client told "watching" cannot miss the change it makes next.
        async for item in events:
            await send.send(item)
