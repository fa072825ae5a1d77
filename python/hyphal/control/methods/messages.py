"""Control methods of the groups' ephemeral message channel: send, watch, status."""

from __future__ import annotations

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, group_of, method
from hyphal.errors import InvalidInput
from hyphal.groups.events import MessageReceived
from hyphal.groups.group import Group


@method("msg.send", "group", "text", "body_hex", "topic", "ttl")
async def msg_send(call: Call) -> Json:
    group, params = group_of(call), call.params
    text, body_hex = params.opt_text("text"), params.opt_text("body_hex")
    if (text is None) == (body_hex is None):
        raise InvalidInput("msg.send: give exactly one of 'text' and 'body_hex'")
    if body_hex is not None:
        try:
            body = bytes.fromhex(body_hex)
        except ValueError:
            raise InvalidInput("msg.send: param 'body_hex' must be hex") from None
    else:
        assert text is not None
        body = text.encode("utf-8")
    ttl = params.opt_seconds("ttl")
    sent = group.send(body, topic=params.opt_text("topic") or "", **({} if ttl is None else {"ttl": ttl}))
    return {
        "group": group.id,
        "id": sent.id.hex(),
        "sent_ms": sent.sent_ms,
        "expires_ms": sent.expires_ms,
        "peers": sent.peers,
    }


@method("msg.watch", "group", "topic")
async def msg_watch(call: Call) -> None:
    """Stream every message received (of ``topic``, if given) until the client goes."""
    group = group_of(call)
    topic = call.params.opt_text("topic")
    send, receive = anyio.create_memory_object_stream[MessageReceived]()
    async with anyio.create_task_group() as tg, receive:
        await tg.start(_pump, group, topic, send)
        await call.emit("progress", {"watching": group.id, "name": group.name, "topic": topic})
        async for item in receive:
            await call.emit("event", encoding.message(item))


async def _pump(
    group: Group,
    topic: str | None,
    send: MemoryObjectSendStream[MessageReceived],
    *,
    task_status: anyio.abc.TaskStatus[None],
) -> None:
    async with send:
        messages = group.messages(topic)
        task_status.started()
        async for item in messages:
            await send.send(item)


@method("msg.status", "group")
async def msg_status(call: Call) -> Json:
    group = group_of(call)
    channel = group.channel
    stats = channel.stats
    return {
        "group": group.id,
        "relay": channel.is_relay,
        "peers": [sub.connection.remote_public_key.hex() for sub in channel.subscribers],
        "sent": stats.sent,
        "delivered": stats.delivered,
        "duplicates": stats.duplicates,
        "forwarded": stats.forwarded,
        "refused": dict(stats.refused),
        "refusals": [{"peer": peer.hex(), "reason": reason} for peer, reason in channel.refusals],
        "held": channel.held,
    }
