"""Control methods on BEP 44-style DHT records: ``record.put`` and ``record.get``.

An immutable record lives under the BLAKE3 hash of its value; a mutable one
under its writer's public key and a salt (§9.5's value id), signed by this
node's identity key, with a seq and an optional compare-and-swap. Values are
at most 1000 bytes and travel as hex (``value_hex``).
"""

from __future__ import annotations

import anyio

from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, method
from hyphal.dht.ids import immutable_key
from hyphal.dht.messages import MAX_VALUE_SIZE
from hyphal.dht.record_store import RecordKind
from hyphal.errors import InvalidInput, NotAvailable, SeqConflict
from hyphal.signed_value import MAX_SALT_SIZE, SignedValue, value_id

DHT_TIMEOUT = 30.0


def key_param(call: Call, what: str = "a record's key") -> bytes:
    """The ``key`` param: 32 bytes in hex, or a one-line error saying what a key is."""
    text = call.params.text("key").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise InvalidInput(
            f"{shown!r} is not {what}: a key is 64 hex digits "
            "(an immutable record's hash, or a writer's public key: `hyphal id` shows this node's)"
        )
    return key


def salt_param(call: Call) -> bytes:
    salt = (call.params.opt_text("salt") or "").encode("utf-8")
    if len(salt) > MAX_SALT_SIZE:
        raise InvalidInput(f"a salt is at most {MAX_SALT_SIZE} bytes in UTF-8; this one is {len(salt)}")
    return salt


def value_param(call: Call, what: str = "record") -> bytes:
    """The ``value_hex`` param, refused with the limit when it is over 1000 bytes."""
    try:
        value = bytes.fromhex(call.params.text("value_hex"))
    except ValueError:
        raise InvalidInput("param 'value_hex' must be hex") from None
    if len(value) > MAX_VALUE_SIZE:
        raise InvalidInput(
            f"a {what} value is at most {MAX_VALUE_SIZE} bytes, and this one is {len(value)}; "
            "put larger data in a blob (`hyphal blob add`) and store its hash"
        )
    return value


def value_json(value: bytes) -> Json:
    try:
        text: str | None = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"value_hex": value.hex(), "value_text": text, "size": len(value)}


def signed_json(signed: SignedValue) -> Json:
    return {
        "key": signed.public_key.hex(),
        "salt": signed.salt.decode("utf-8", "replace"),
        "id": signed.id.hex(),
        "seq": signed.seq,
        **value_json(signed.value),
    }


@method("record.put", "value_hex", "mutable", "salt", "cas")
async def record_put(call: Call) -> Json:
    node, params = call.node, call.params
    value = value_param(call)
    salt, cas = salt_param(call), params.opt_int("cas")
    mutable = params.flag("mutable")
    if not mutable and (salt or cas is not None):
        raise InvalidInput("--salt and --cas are for mutable records: add --mutable")
    if mutable:
        try:
            with anyio.fail_after(DHT_TIMEOUT):
                put = await node.dht.put_mutable(node.keypair, value, salt=salt, cas=cas)
        except SeqConflict:
            raise await _stale(call, salt, cas) from None
        stored_id = value_id(node.public_key, salt)
        kind = RecordKind.MUTABLE
        result: Json = {"key": node.public_key.hex(), "salt": salt.decode("utf-8"), "id": stored_id.hex()}
    else:
        with anyio.fail_after(DHT_TIMEOUT):
            put = await node.dht.put_immutable(value)
        stored_id = immutable_key(value)
        kind = RecordKind.IMMUTABLE
        result = {"key": stored_id.hex(), "salt": "", "id": stored_id.hex()}
    if put.stored == 0:
        # Nobody holds it: say so rather than republish a record the user believes stored.
        node.dht.node.stop_publishing(kind, stored_id)
        peers = len(node.dht.node.table)
        why = (
            "this node knows no DHT peers (start it with --bootstrap HOST:PORT)"
            if peers == 0
            else f"none of the {peers} DHT peers it knows took it ({put.timeouts} timed out)"
        )
        raise NotAvailable(f"the record was not stored: {why}")
    return {**result, "mutable": mutable, "seq": put.seq, "stored": put.stored, **value_json(value)}


async def _stale(call: Call, salt: bytes, cas: int | None) -> SeqConflict:
    """The conflict a stale ``cas`` met, with the seq to retry with."""
    node = call.node
    with anyio.fail_after(DHT_TIMEOUT):
        found = (await node.dht.get_mutable(node.public_key, salt)).signed_value
    current = 0 if found is None else found.seq
    salt_arg = f" --salt {salt.decode('utf-8')}" if salt else ""
    return SeqConflict(
        f"compare-and-swap failed: the record's seq is {current}, not {cas}; read it again "
        f"(`hyphal record get {node.public_key.hex()}{salt_arg}`) and retry with --cas {current}"
    )


@method("record.get", "key", "salt")
async def record_get(call: Call) -> Json:
    """A mutable record under (key, salt) with a salt; without one, an immutable record under
    the hash ``key`` or a mutable one under the public key ``key``, whichever exists."""
    dht = call.node.dht
    key, salt = key_param(call), salt_param(call)
    immutable: list[bytes | None] = [None]
    mutable: list[SignedValue | None] = [None]

    async def get_immutable() -> None:
        immutable[0] = await dht.get_immutable(key)

    async def get_mutable() -> None:
        mutable[0] = (await dht.get_mutable(key, salt)).signed_value

    with anyio.fail_after(DHT_TIMEOUT):
        async with anyio.create_task_group() as tg:
            if not salt:
                tg.start_soon(get_immutable)
            tg.start_soon(get_mutable)
    found_value, signed = immutable[0], mutable[0]
    if found_value is not None:
        plain: Json = {"key": key.hex(), "salt": "", "id": key.hex(), "mutable": False, "seq": None}
        return {**plain, **value_json(found_value)}
    if signed is not None:
        return {**signed_json(signed), "mutable": True}
    with_salt = f" with salt {salt.decode('utf-8')!r}" if salt else ""
    raise NotAvailable(
        f"no record under {key.hex()}{with_salt}: no DHT node asked holds one "
        f"({len(dht.node.table)} peers known)"
    )
