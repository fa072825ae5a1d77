"""Control methods on the replicated secret store, as the node's identity (docs/PROTOCOL.md §15.6)."""

from __future__ import annotations

import base64
import binascii

from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, method
from hyphal.errors import InvalidInput
from hyphal.secrets import OwnedSecret, secret_id


def _key(call: Call, name: str) -> bytes:
    text = call.params.text(name)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidInput(f"the {name} key is 64 hex digits (`hyphal id` shows a node's public key)")
    return key


def _owned(call: Call, entry: OwnedSecret) -> Json:
    owner = call.node.public_key
    return {
        "url": entry.url,
        "id": secret_id(owner, entry.url).hex(),
        "owner": owner.hex(),
        "version": entry.version,
        "readers": [r.hex() for r in entry.readers],
        "size": entry.size,
    }


@method("secret.put", "url", "value")
async def secret_put(call: Call) -> Json:
    try:
        value = base64.b64decode(call.params.text("value"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("secret.put: param 'value' must be base64") from None
    return _owned(call, await call.node.secrets.put(call.params.text("url"), value))


@method("secret.get", "url", "owner")
async def secret_get(call: Call) -> Json:
    url = call.params.text("url")
    owner = call.node.public_key if call.params.opt_text("owner") is None else _key(call, "owner")
    value = await call.node.secrets.get(url, owner)
    return {"url": url, "owner": owner.hex(), "size": len(value), "value": base64.b64encode(value).decode()}


@method("secret.rm", "url")
async def secret_rm(call: Call) -> Json:
    url = call.params.text("url")
    return {"url": url, "version": await call.node.secrets.delete(url)}


@method("secret.ls", "held")
async def secret_ls(call: Call) -> list[Json]:
    secrets = call.node.secrets
    if call.params.flag("held"):
        return [
            {"id": h.id.hex(), "owner": h.owner.hex(), "version": h.version, "deleted": h.deleted}
            for h in secrets.held()
        ]
    return [_owned(call, entry) for entry in secrets.list()]


@method("secret.grant", "url", "reader")
async def secret_grant(call: Call) -> Json:
    return _owned(call, await call.node.secrets.grant(call.params.text("url"), _key(call, "reader")))


@method("secret.revoke", "url", "reader")
async def secret_revoke(call: Call) -> Json:
    return _owned(call, await call.node.secrets.revoke(call.params.text("url"), _key(call, "reader")))
