"""Control methods on signed values (§9.5, §10.6): ``value.set``, ``value.get`` and ``value.watch``.

A value is named by its writer's public key and a salt (its name). How a
node finds one by key alone is :class:`~hyphal.replication.values.ValueService`'s
docstring: the DHT record of the same key and salt, and announces on the
value's id that lead to its writer's live channel.
"""

from __future__ import annotations

import contextlib

import anyio

from hyphal.control.encoding import Json
from hyphal.control.methods.records import key_param, salt_param, signed_json, value_param
from hyphal.control.methods.registry import Call, method
from hyphal.errors import InvalidInput
from hyphal.signed_value import SignedValue

WATCH_BACKLOG = 1000
"""Versions a slow client may fall behind before the oldest unsent ones are skipped."""


@method("value.set", "name", "value_hex", "cas")
async def value_set(call: Call) -> Json:
    name = call.params.text("name").encode("utf-8")
    if not name:
        raise InvalidInput("a value needs a name (its salt): `hyphal value set NAME VALUE`")
    if len(name) > 64:
        raise InvalidInput(f"a value's name is at most 64 bytes in UTF-8; this one is {len(name)}")
    value = value_param(call, "signed")
    signed, stored = await call.node.values.set(name, value, cas=call.params.opt_int("cas"))
    return {**signed_json(signed), "stored": stored}


@method("value.get", "key", "salt")
async def value_get(call: Call) -> Json:
    key = key_param(call, "a value's key (its writer's public key)")
    return signed_json(await call.node.values.latest(key, salt_param(call)))


@method("value.watch", "key", "salt")
async def value_watch(call: Call) -> None:
    """The current version, then every newer one as this node accepts it, until the client goes."""
    key = key_param(call, "a value's key (its writer's public key)")
    values = call.node.values
    replication = await values.follow(key, salt_param(call))
    replica = replication.value
    send, receive = anyio.create_memory_object_stream[SignedValue](WATCH_BACKLOG)

    def changed(version: SignedValue) -> None:
        # A client far behind gets a newer version later, never an older one.
        with contextlib.suppress(anyio.WouldBlock):
            send.send_nowait(version)

    unsubscribe = replica.on_change(changed)
    try:
        async with anyio.create_task_group() as tg, receive:
            salt = replica.salt.decode("utf-8", "replace")
            await call.emit("progress", {"watching": replica.id.hex(), "key": key.hex(), "salt": salt})
            shown = 0
            if replica.current is not None:
                shown = replica.current.seq
                await call.emit("event", signed_json(replica.current))
            tg.start_soon(values.keep_finding, replication)
            async for version in receive:
                if version.seq > shown:
                    shown = version.seq
                    await call.emit("event", signed_json(version))
    finally:
        unsubscribe()
