"""Control methods about the node and its groups."""

from __future__ import annotations

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, group_of, method
from hyphal.net.address import format_address


@method("status")
async def status(call: Call) -> Json:
    node = call.node
    return {
        "public_key": node.public_key.hex(),
        "address": format_address(node.address),
        "advertised": node.advertised_addresses(),
        "ws_address": None if node.ws_address is None else format_address(node.ws_address),
        "data_dir": str(node.data_dir),
        "backup": node.group_manager.backup_for is not None,
        "groups": [encoding.group_summary(g) for g in node.groups()],
        "blobs_served": {peer.hex(): sent for peer, sent in node.blobs_served.items()},
    }


@method("group.create", "name", "member_name")
async def group_create(call: Call) -> Json:
    params = call.params
    group = await call.node.create_group(params.text("name"), member_name=params.opt_text("member_name"))
    return {**encoding.group_summary(group), "invite": group.invite().to_uri()}


@method("group.join", "uri", "member_name")
async def group_join(call: Call) -> Json:
    params = call.params
    group = await call.node.join_group(params.text("uri"), member_name=params.opt_text("member_name"))
    reached = len(group.replication.member_connections())
    return {
        **encoding.group_summary(group),
        "connected": reached,
        "reached": group.reached(),
        "unreachable": group.unreachable(),
    }


@method("group.list")
async def group_list(call: Call) -> list[Json]:
    running = [encoding.group_summary(g) for g in call.node.groups()]
    return running + [encoding.closed_group(r) for r in call.node.group_manager.closed()]


@method("group.info", "group")
async def group_info(call: Call) -> Json:
    return encoding.group_detail(group_of(call))


@method("group.invite", "group")
async def group_invite(call: Call) -> Json:
    group = group_of(call)
    return {"id": group.id, "name": group.name, "invite": group.invite().to_uri()}


@method("group.leave", "group")
async def group_leave(call: Call) -> Json:
    group = group_of(call)
    summary = encoding.group_summary(group)
    await call.node.leave_group(group.id)
    return summary


@method("group.close", "group")
async def group_close(call: Call) -> Json:
    group = group_of(call)
    summary = encoding.group_summary(group)
    await call.node.close_group(group.id)
    return {**summary, "closed": True}


@method("group.open", "group")
async def group_open(call: Call) -> Json:
    group = await call.node.open_group(call.params.text("group"))
    return encoding.group_summary(group)


@method("group.backup", "group", "address")
async def group_backup(call: Call) -> Json:
    group = group_of(call)
    address = call.params.text("address")
    await call.node.add_backup(group.id, address)
    return {"id": group.id, "name": group.name, "address": address}
