"""Control methods of device pairing and the membership log (§17): ``pair.*`` and ``device.*``."""

from __future__ import annotations

import anyio

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, group_of, method
from hyphal.errors import InvalidInput
from hyphal.files import write_atomically
from hyphal.groups.device_bundle import DeviceBundle, seal_bundle
from hyphal.groups.group import Group
from hyphal.groups.pairing import CODE_TTL
from hyphal.groups.pairing_requests import PendingRequest, request_id


def _request(group: Group, pending: PendingRequest) -> Json:
    return {
        "group": group.id,
        "id": pending.id,
        "device": pending.device.hex(),
        "name": pending.name,
        "code": pending.code,
    }


@method("pair.code", "group")
async def pair_code(call: Call) -> Json:
    """A one-time code for a new device (starting the membership log on the origin)."""
    group = group_of(call)
    code = await call.node.pairing.make_code(group)
    return {"group": group.id, "name": group.name, "account": group.id, "code": code, "expires_in": CODE_TTL}


@method("pair.password", "group", "password")
async def pair_password(call: Call) -> Json:
    """Set the account password new devices may sign in with (its Argon2id hash is kept)."""
    group = group_of(call)
    call.node.pairing.set_password(group, call.params.text("password"))
    await call.node.pairing.announce(group)
    return {"group": group.id, "name": group.name, "account": group.id}


@method("pair.join", "account", "code", "password", "member_name", "peer", "timeout")
async def pair_join(call: Call) -> Json:
    """Sign in to an account with a code or the password: join read-only, then ask to write."""
    params = call.params
    code, password = params.opt_text("code"), params.opt_text("password")
    if (code is None) == (password is None):
        raise InvalidInput("pair.join: give exactly one of 'code' and 'password'")
    peer = params.opt_text("peer")
    timeout = params.opt_seconds("timeout")
    group = await call.node.pairing.join(
        params.text("account"),
        code if code is not None else password or "",
        password=password is not None,
        name=params.opt_text("member_name"),
        peers=[peer] if peer else None,
        **({} if timeout is None else {"timeout": timeout}),
    )
    request, verification = group.request_approval()
    return {
        **encoding.group_summary(group),
        "request": request,
        "code": verification,
        "writer": group.can_write,
    }


@method("pair.requests", "group")
async def pair_requests(call: Call) -> list[Json]:
    group = group_of(call)
    return [_request(group, p) for p in group.pairing_requests()]


@method("pair.approve", "group", "request")
async def pair_approve(call: Call) -> Json:
    group = group_of(call)
    return _request(group, group.approve_request(call.params.text("request")))


@method("pair.deny", "group", "request")
async def pair_deny(call: Call) -> Json:
    group = group_of(call)
    return _request(group, group.deny_request(call.params.text("request")))


@method("pair.request", "group")
async def pair_request(call: Call) -> Json:
    """Ask again (this device) to be approved: the request goes over the message channel."""
    group = group_of(call)
    request, verification = group.request_approval()
    return {"group": group.id, "request": request, "code": verification}


@method("device.ls", "group")
async def device_ls(call: Call) -> Json:
    """This group's devices as its membership log has them: writers, read-only, removed."""
    group = group_of(call)
    state = group.log.state
    devices: list[Json] = []
    names = {m.key: m.advert.name for m in group.members()}
    for key, writer in sorted(state.writers.items(), key=lambda kv: kv[1].seniority):
        devices.append(
            {
                "id": request_id(key),
                "device": key.hex(),
                "name": names.get(key) or writer.name,
                "role": "origin" if key == state.origin else "writer",
                "approved_by": writer.approved_by.hex() if writer.approved_by else None,
            }
        )
    for member in group.members():
        if member.key not in state.writers and member.key not in state.removed and not member.advert.backup:
            role = "writer" if not state.active else "read-only"
            devices.append(
                {
                    "id": request_id(member.key),
                    "device": member.key.hex(),
                    "name": member.advert.name,
                    "role": role,
                    "approved_by": None,
                }
            )
    for key, removal in state.removed.items():
        devices.append(
            {
                "id": request_id(key),
                "device": key.hex(),
                "name": names.get(key, ""),
                "role": "removed",
                "approved_by": None,
                "removed_by": removal.by.hex(),
                "repo_length": removal.repo_length,
            }
        )
    for d in devices:
        d["self"] = d["device"] == group.device_key.hex()
    return {
        "group": group.id,
        "name": group.name,
        "log": state.active,
        "writer": group.can_write,
        "restoring": group.record.restore_repo,
        "devices": devices,
    }


@method("device.rm", "group", "device")
async def device_rm(call: Call) -> Json:
    """Remove a device (by id, a prefix of it, or its key in hex): its later writes are refused."""
    group = group_of(call)
    ref = call.params.text("device").strip().lower()
    state = group.log.state
    known = set(state.writers) | {m.key for m in group.members()}
    found = [k for k in known if ref and (request_id(k).startswith(ref) or k.hex().startswith(ref))]
    if len(found) != 1:
        raise InvalidInput(
            f"{'no' if not found else 'more than one'} device {ref!r} in this group (see `hyphal device ls`)"
        )
    entry = group.remove_device(found[0])
    return {
        "group": group.id,
        "device": found[0].hex(),
        "id": request_id(found[0]),
        "repo_length": entry.repo_length,
    }


@method("device.export", "passphrase", "dest")
async def device_export(call: Call) -> Json:
    """Write this device's identity and group memberships to ``dest``, sealed under ``passphrase``
    with Argon2id (§17.6), for `hyphal device import` on new hardware."""
    node, params = call.node, call.params
    records = [g.record for g in node.groups()] + node.group_manager.closed()
    sealed = await anyio.to_thread.run_sync(
        seal_bundle, DeviceBundle(node.keypair, records), params.text("passphrase")
    )
    dest = params.path("dest")
    write_atomically(dest, sealed)
    return {"dest": str(dest), "public_key": node.public_key.hex(), "groups": [r.name for r in records]}
