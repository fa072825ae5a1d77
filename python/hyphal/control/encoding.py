"""The JSON form of everything the control API returns or streams, in one place.

Keys and hashes are hex; sizes are bytes; names are as the repos hold them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hyphal.blobs.blob_store import BlobInfo
from hyphal.feed import Feed
from hyphal.groups.events import (
    DeviceApproved,
    DeviceRemoved,
    FileAdded,
    FileInfo,
    FileRemoved,
    GroupEvent,
    MemberJoined,
    MemberLeft,
    MessageReceived,
    PairingRequested,
    RepoAdded,
    SyncProgress,
    SyncResult,
)
from hyphal.groups.group import Group
from hyphal.groups.invite import b32
from hyphal.groups.state import GroupRecord

Json = dict[str, Any]


def group_summary(group: Group) -> Json:
    return {
        "id": group.id,
        "name": group.name,
        "backup": group.is_backup,
        "member_name": group.record.member_name,
        "members": len(group.members()),
        "files": len(group.files()),
        "closed": False,
    }


def closed_group(record: GroupRecord) -> Json:
    """A group closed on this device: what its saved record says."""
    return {
        "id": b32(record.group_key),
        "name": record.name,
        "backup": record.secret is None,
        "member_name": record.member_name,
        "closed": True,
    }


def group_detail(group: Group) -> Json:
    """The summary, and every member with its name, backup flag and repo file count."""
    counts = Counter(f.member for f in group.files())
    members = [
        {
            "key": m.key.hex(),
            "name": m.advert.name,
            "backup": m.advert.backup,
            "self": m.key == group.device_key,
            "addresses": list(m.advert.addresses),
            "files": counts[m.key],
        }
        for m in group.members()
    ]
    return {**group_summary(group), "member_list": members}


def file_info(file: FileInfo, local: bool | None = None) -> Json:
    """A file in a member's repo; ``local``: whether this node holds its blob whole."""
    out: Json = {
        "name": file.name,
        "member": file.member.hex(),
        "member_name": file.member_name,
        "hash": file.blob_hash.hex(),
        "size": file.size,
        "mtime_ms": file.entry.mtime_ms,
        "private": file.private,
    }
    if local is not None:
        out["local"] = local
    return out


def blob_info(info: BlobInfo) -> Json:
    return {"hash": info.hash.hex(), "size": info.size, "complete": info.complete}


def feed_info(feed: Feed) -> Json:
    manifest = feed.manifest
    return {
        "key": feed.key.hex(),
        "discovery_key": feed.discovery_key.hex(),
        "length": feed.length,
        "byte_length": feed.byte_length,
        "downloaded": feed.downloaded(),
        "fork": feed.fork,
        "writable": feed.writable,
        "encrypted": feed.encrypted,
        "can_decrypt": feed.can_decrypt,
        "signers": [s.hex() for s in manifest.signers],
        "quorum": manifest.quorum,
        "label": manifest.label.decode("utf-8", "replace"),
    }


def sync_progress(progress: SyncProgress) -> Json:
    return {
        "phase": progress.phase,
        "files_done": progress.files_done,
        "files_total": progress.files_total,
        "bytes_done": progress.bytes_done,
        "bytes_total": progress.bytes_total,
        "current": progress.current,
    }


def sync_result(result: SyncResult) -> Json:
    return {
        "members": result.members,
        "repos": result.repos,
        "files": result.files,
        "bytes_fetched": result.bytes_fetched,
        "missing": list(result.missing),
    }


def event(item: GroupEvent) -> Json:
    """``{"type": "file_added", ...}``: one of the :mod:`hyphal.groups.events` changes."""
    match item:
        case MemberJoined(member, name, backup):
            return {"type": "member_joined", "member": member.hex(), "name": name, "backup": backup}
        case MemberLeft(member, name):
            return {"type": "member_left", "member": member.hex(), "name": name}
        case RepoAdded(member, name, repo_key):
            return {"type": "repo_added", "member": member.hex(), "name": name, "repo": repo_key.hex()}
        case FileAdded(file):
            return {"type": "file_added", **file_info(file)}
        case FileRemoved(member, member_name, name):
            return {"type": "file_removed", "member": member.hex(), "member_name": member_name, "name": name}
        case DeviceApproved(device, name):
            return {"type": "device_approved", "device": device.hex(), "name": name}
        case DeviceRemoved(device, repo_length):
            return {"type": "device_removed", "device": device.hex(), "repo_length": repo_length}
        case PairingRequested(request, device, name, code):
            return {
                "type": "pairing_requested",
                "request": request,
                "device": device.hex(),
                "name": name,
                "code": code,
            }
        case MessageReceived():
            return message(item)
    raise AssertionError(f"unknown group event {item!r}")


def message(item: MessageReceived) -> Json:
    """``{"type": "message", ...}``: a message received on the group's ephemeral channel."""
    try:
        text: str | None = item.body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "type": "message",
        "id": item.id.hex(),
        "sender": item.sender.hex(),
        "sender_name": item.sender_name,
        "topic": item.topic,
        "text": text,
        "body_hex": item.body.hex(),
        "sent_ms": item.sent_ms,
        "via": item.via.hex(),
        "direct": item.direct,
    }


__all__ = [
    "Json",
    "blob_info",
    "event",
    "feed_info",
    "file_info",
    "group_detail",
    "group_summary",
    "message",
    "sync_progress",
    "sync_result",
]
