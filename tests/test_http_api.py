"""The HTTP API against two real daemons on 127.0.0.x: every resource, through httpx.

A and B run with their HTTP APIs on their own addresses; B bootstraps from A,
so the DHT, records, values and secrets have a peer. Each test makes its own
groups and feeds, so they run in any order.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from http_daemons import client, events, next_event, start
from hyphal.control.process import DaemonProcess
from hyphal.hashing import blake3

PROBLEM = "application/problem+json"


class Pair:
    def __init__(self, a: DaemonProcess, b: DaemonProcess) -> None:
        self.a, self.b = a, b
        self.api_a, self.api_b = client(a), client(b)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("http")
    a = start(root, "a", "127.0.0.31")
    b = start(root, "b", "127.0.0.32", "--bootstrap", a.address)
    try:
        found = Pair(a, b)
        yield found
        found.api_a.close()
        found.api_b.close()
    finally:
        for node in (a, b):
            node.stop()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if "json" in response.headers.get("content-type", "") else response.content


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert body["type"].endswith("/" + code)
    assert body["title"]
    assert body["detail"]
    return body


def upload(api: httpx.Client, group: str, filename: str, data: bytes, **fields: str) -> Any:
    return ok(api.post(f"/groups/{group}/files", files={"file": (filename, data)}, data=fields))


def test_status_peers_and_the_dht(pair: Pair) -> None:
    status = ok(pair.api_a.get("/status"))
    assert status["public_key"] == pair.a.public_key
    assert status["address"] == pair.a.address
    peers = ok(pair.api_b.get("/peers"))
    assert isinstance(peers, list)
    dht = ok(pair.api_b.get("/dht"))
    assert dht["public_key"] == pair.b.public_key
    assert dht["table_size"] >= 1
    contacts = ok(pair.api_b.get("/dht/peers"))
    assert pair.a.public_key in {c["public_key"] for c in contacts}
    found = ok(pair.api_b.get(f"/dht/lookup/{pair.a.public_key}"))
    assert found["key"] == pair.a.public_key
    assert found["closest"]


def test_groups_create_join_info_members_invite_close_open_leave(pair: Pair) -> None:
    made = ok(pair.api_a.post("/groups", json={"name": "g-groups", "member_name": "alice"}))
    gid = made["id"]
    assert made["invite"].startswith("hyphal://group/")
    assert gid in {g["id"] for g in ok(pair.api_a.get("/groups"))}
    joined = ok(pair.api_b.post("/groups/join", json={"uri": made["invite"], "member_name": "bob"}))
    assert joined["id"] == gid
    assert joined["connected"] >= 1
    info = ok(pair.api_b.get(f"/groups/{gid}"))
    assert info["name"] == "g-groups"
    members = ok(pair.api_b.get(f"/groups/{gid}/members"))
    assert {m["name"] for m in members} >= {"bob"}
    assert ok(pair.api_a.get("/groups/g-groups/invite"))["invite"].startswith("hyphal://group/")
    closed = ok(pair.api_b.post(f"/groups/{gid}/close"))
    assert closed["closed"] is True
    assert {g["id"]: g["closed"] for g in ok(pair.api_b.get("/groups"))}[gid] is True
    problem(pair.api_b.get(f"/groups/{gid}"), 404, "not_available")
    assert ok(pair.api_b.post(f"/groups/{gid}/open"))["id"] == gid
    assert ok(pair.api_b.post(f"/groups/{gid}/leave"))["id"] == gid
    problem(pair.api_a.post(f"/groups/{gid}/backup", json={"address": "nowhere"}), 400, "invalid_address")


def test_a_backup_server_takes_a_group_through_the_api(pair: Pair, tmp_path: Path) -> None:
    backup = start(tmp_path, "c", "127.0.0.38", "--backup", "--authorize", pair.a.public_key, run=("serve",))
    try:
        gid = ok(pair.api_a.post("/groups", json={"name": "g-backup"}))["id"]
        upload(pair.api_a, gid, "kept.txt", b"kept by the backup")
        asked = ok(pair.api_a.post(f"/groups/{gid}/backup", json={"address": backup.address}))
        assert asked == {"id": gid, "name": "g-backup", "address": backup.address}
        with client(backup) as api_c:
            assert gid in {g["id"] for g in ok(api_c.get("/groups"))}
            assert ok(api_c.get(f"/groups/{gid}"))["backup"] is True
    finally:
        backup.stop()


def test_files_upload_list_download_ranges_and_remove(pair: Pair) -> None:
    gid = ok(pair.api_a.post("/groups", json={"name": "g-files"}))["id"]
    data = os.urandom(300_000)
    added = upload(pair.api_a, gid, "photo.jpg", data)
    assert added["size"] == len(data)
    assert added["hash"] == blake3(data).hex()
    upload(pair.api_a, gid, "ignored-filename", data[:1000], name="dir/secret.bin", private="true")
    listed = {f["name"]: f for f in ok(pair.api_a.get(f"/groups/{gid}/files"))}
    assert set(listed) == {"photo.jpg", "dir/secret.bin"}
    assert listed["dir/secret.bin"]["private"]

    whole = pair.api_a.get(f"/groups/{gid}/files/photo.jpg")
    assert ok(whole) == data
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["etag"] == f'"{blake3(data).hex()}"'
    for header, want in (
        ("bytes=10-19", data[10:20]),
        ("bytes=299990-", data[299990:]),
        ("bytes=-7", data[-7:]),
        ("bytes=100000-1000000", data[100000:]),
    ):
        part = pair.api_a.get(f"/groups/{gid}/files/photo.jpg", headers={"Range": header})
        assert ok(part, 206) == want, header
        start = len(data) - len(want) if header.startswith("bytes=-") else int(header[6:].split("-")[0])
        assert part.headers["content-range"] == f"bytes {start}-{start + len(want) - 1}/{len(data)}"
    beyond = pair.api_a.get(f"/groups/{gid}/files/photo.jpg", headers={"Range": "bytes=300000-"})
    problem(beyond, 416, "range_not_satisfiable")
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    # A private file decrypts segment by segment: a range inside it reads only what it names.
    private = pair.api_a.get(f"/groups/{gid}/files/dir/secret.bin", headers={"Range": "bytes=500-599"})
    assert ok(private, 206) == data[500:600]
    assert ok(pair.api_a.get(f"/groups/{gid}/files/dir/secret.bin")) == data[:1000]

    removed = ok(pair.api_a.delete(f"/groups/{gid}/files/photo.jpg"))
    assert removed == {"group": gid, "name": "photo.jpg"}
    problem(pair.api_a.get(f"/groups/{gid}/files/photo.jpg"), 404, "not_available")
    problem(pair.api_a.post(f"/groups/{gid}/files", content=b"not a form"), 400, "invalid_input")
    no_file = pair.api_a.post(f"/groups/{gid}/files", files={"other": ("x", b"x")})
    problem(no_file, 400, "invalid_input")
    problem(upload_raw(pair.api_a, gid, b"x", name="../up"), 400, "invalid_input")


def upload_raw(api: httpx.Client, group: str, data: bytes, **fields: str) -> httpx.Response:
    return api.post(f"/groups/{group}/files", files={"file": ("f", data)}, data=fields)


def test_sync_with_progress_and_events_from_another_node(pair: Pair) -> None:
    made = ok(pair.api_a.post("/groups", json={"name": "g-sync", "member_name": "alice"}))
    gid = made["id"]
    ok(pair.api_b.post("/groups/join", json={"uri": made["invite"], "member_name": "bob"}))
    first = os.urandom(200_000)
    upload(pair.api_a, gid, "first.bin", first)
    with pair.api_b.stream("POST", f"/groups/{gid}/sync", headers={"Accept": "text/event-stream"}) as sse:
        assert sse.status_code == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        got = list(events(sse))
    assert got[-1][0] == "result"
    assert got[-1][1]["missing"] == []
    assert all(name == "progress" for name, _ in got[:-1])
    assert ok(pair.api_b.get(f"/groups/{gid}/files/first.bin")) == first
    assert ok(pair.api_b.post(f"/groups/{gid}/sync"))["group"] == gid

    # GET /events on B: A's new file arrives as an event, tagged with its group.
    with pair.api_b.stream("GET", "/events", params={"group": gid}) as sse:
        stream = events(sse)
        assert next_event(stream, "progress", group=gid)["watching"] == gid
        upload(pair.api_a, gid, "second.bin", b"second")
        added = next_event(stream, "event", group=gid, type="file_added", name="second.bin")
        assert added["member_name"] == "alice"
        assert added["size"] == 6
        ok(pair.api_a.delete(f"/groups/{gid}/files/second.bin"))
        next_event(stream, "event", group=gid, type="file_removed", name="second.bin")
    problem(pair.api_b.get("/events", params={"group": "no-such-group"}), 404, "not_available")


def test_blobs_add_list_get_range_remove_gc(pair: Pair) -> None:
    data = os.urandom(100_000)
    added = ok(pair.api_a.post("/blobs", files={"file": ("blob", data)}))
    h = added["hash"]
    assert h == blake3(data).hex()
    assert added["size"] == len(data)
    assert added["complete"]
    assert h in {b["hash"] for b in ok(pair.api_a.get("/blobs"))}
    assert ok(pair.api_a.get(f"/blobs/{h}")) == data
    assert ok(pair.api_a.get(f"/blobs/{h}", headers={"Range": "bytes=4096-8191"}), 206) == data[4096:8192]
    # B fetches it from its peer A, then serves it.
    assert ok(pair.api_b.get(f"/blobs/{h}", headers={"Range": "bytes=0-0"}), 206) == data[:1]
    removed = ok(pair.api_a.delete(f"/blobs/{h}"))
    assert removed["untagged"] is True
    gc = ok(pair.api_a.post("/blobs/gc"))
    assert h in gc["deleted"]
    problem(pair.api_a.delete(f"/blobs/{h}"), 404, "not_available")
    problem(pair.api_a.get("/blobs/zz"), 400, "invalid_input")


def test_feeds_create_append_info_blocks_and_follow(pair: Pair) -> None:
    made = ok(pair.api_a.post("/feeds", json={"name": "http-feed"}))
    key = made["key"]
    assert made["writable"]
    assert made["share"] == f"hyphal://feed/{key}"
    appended = ok(pair.api_a.post(f"/feeds/{key}/append", content=b"hello "))
    assert appended["appended_blocks"] == 1
    assert appended["length"] == 1
    big = os.urandom(200_000)
    assert ok(pair.api_a.post(f"/feeds/{key}/append", content=big))["appended_bytes"] == len(big)
    info = ok(pair.api_a.get(f"/feeds/{key}"))
    assert info["length"] == 5
    assert info["byte_length"] == 6 + len(big)
    assert key in {f["key"] for f in ok(pair.api_a.get("/feeds"))}
    assert ok(pair.api_a.get(f"/feeds/{key}/blocks")) == b"hello " + big
    # B finds the feed by its key on the DHT and reads a range, verified.
    assert ok(pair.api_b.get(f"/feeds/{key}/blocks", params={"start": 0, "end": 1})) == b"hello "
    with pair.api_b.stream(
        "GET", f"/feeds/{key}/blocks", params={"start": 1, "end": 2}, headers={"Accept": "text/event-stream"}
    ) as sse:
        got = list(events(sse))
    blocks = [d for name, d in got if name == "event"]
    assert got[-1][0] == "result"
    assert base64.b64decode(blocks[0]["data"]) == big[:65536]
    # follow on B: a block A appends arrives live.
    with pair.api_b.stream("GET", f"/feeds/{key}/follow", params={"start": 5}) as sse:
        stream = events(sse)
        assert next_event(stream, "progress")["following"] == key
        ok(pair.api_a.post(f"/feeds/{key}/append", content=b"live"))
        block = next_event(stream, "event", index=5)
        assert base64.b64decode(block["data"]) == b"live"
    problem(pair.api_a.get(f"/feeds/{key}/blocks", params={"start": 3, "end": 99}), 400, "invalid_input")
    problem(pair.api_a.post(f"/feeds/{'00' * 32}/append", content=b"x"), 403, "unauthorized")


def test_records_and_signed_values_with_a_live_watch(pair: Pair) -> None:
    put = ok(pair.api_a.post("/records", json={"value_hex": b"http record".hex()}))
    got = ok(pair.api_b.get(f"/records/{put['key']}"))
    assert got["value_text"] == "http record"
    assert got["mutable"] is False
    mutable = ok(pair.api_a.post("/records", json={"value_hex": "01", "mutable": True, "salt": "s"}))
    assert ok(pair.api_b.get(f"/records/{mutable['key']}", params={"salt": "s"}))["seq"] == mutable["seq"]
    stale = pair.api_a.post("/records", json={"value_hex": "02", "mutable": True, "salt": "s", "cas": 999})
    problem(stale, 409, "seq_conflict")

    first = ok(pair.api_a.post("/values", json={"name": "status", "value_hex": b"one".hex()}))
    assert ok(pair.api_a.get(f"/values/{first['key']}", params={"salt": "status"}))["value_text"] == "one"
    with pair.api_b.stream("GET", f"/values/{first['key']}/watch", params={"salt": "status"}) as sse:
        stream = events(sse)
        next_event(stream, "progress")
        assert next_event(stream, "event")["value_text"] == "one"
        ok(pair.api_a.post("/values", json={"name": "status", "value_hex": b"two".hex()}))
        assert next_event(stream, "event", value_text="two")["seq"] > first["seq"]


def test_secrets_put_get_grant_revoke_list_delete(pair: Pair) -> None:
    url = "https://mail.example/http"
    value = base64.b64encode(b"hunter2").decode()
    put = ok(pair.api_a.put("/secrets", json={"url": url, "value": value}))
    assert put["url"] == url
    assert put["owner"] == pair.a.public_key
    assert ok(pair.api_a.get("/secrets/value", params={"url": url}))["value"] == value
    assert url in {s["url"] for s in ok(pair.api_a.get("/secrets"))}
    assert isinstance(ok(pair.api_a.get("/secrets", params={"held": "true"})), list)
    granted = ok(pair.api_a.post("/secrets/grant", json={"url": url, "reader": pair.b.public_key}))
    assert granted["readers"] == [pair.b.public_key]
    read = ok(pair.api_b.get("/secrets/value", params={"url": url, "owner": pair.a.public_key}))
    assert base64.b64decode(read["value"]) == b"hunter2"
    assert (
        ok(pair.api_a.post("/secrets/revoke", json={"url": url, "reader": pair.b.public_key}))["readers"]
        == []
    )
    assert ok(pair.api_a.request("DELETE", "/secrets", params={"url": url}))["url"] == url
    problem(pair.api_a.get("/secrets/value", params={"url": url}), 404, "not_available")


def test_bad_requests_are_problems_and_the_node_keeps_answering(pair: Pair, tmp_path: Path) -> None:
    api = pair.api_a
    problem(
        api.post("/groups", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "invalid_request",
    )
    body = problem(api.post("/groups", json={"name": 5}), 422, "invalid_request")
    assert body["errors"][0]["loc"] == ["body", "name"]
    problem(api.post("/groups", json={"name": "x", "surprise": 1}), 422, "invalid_request")
    problem(api.get("/groups/no-such-group"), 404, "not_available")
    problem(api.get("/records/xyz"), 400, "invalid_input")
    problem(api.post("/records", json={"value_hex": "00" * 1001}), 400, "invalid_input")
    problem(api.get("/no/such/route"), 404, "no_such_route")
    problem(api.delete("/status"), 405, "method_not_allowed")
    problem(api.get("/feeds/00/blocks", params={"r": "&&"}), 400, "invalid_input")
    problem(api.get("/feeds/00/blocks", params={"start": -1}), 422, "invalid_request")
    assert ok(api.get("/status"))["public_key"] == pair.a.public_key
