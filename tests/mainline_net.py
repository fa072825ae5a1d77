"""A loopback mainline DHT of libtorrent sessions, and helpers to wait on their alerts (tests only).

Every session listens on 127.0.0.1 with the checks that assume one node per
IP turned off (``dht_restrict_routing_ips``, ``dht_restrict_search_ips``,
``dht_enforce_node_id``) and libtorrent's per-IP DHT rate limit raised (every
node here shares one IP), no public bootstrap node, and every other session
added with ``add_dht_node``. Waiting is on alerts with a deadline, never a
sleep.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import libtorrent as lt

ALERTS = int(lt.alert.category_t.dht_notification) | int(lt.alert.category_t.dht_operation_notification)
SETTINGS: dict[str, Any] = {
    "enable_dht": True,
    "enable_lsd": False,
    "enable_upnp": False,
    "enable_natpmp": False,
    "listen_interfaces": "127.0.0.1:0",
    "dht_bootstrap_nodes": "",
    "dht_restrict_routing_ips": False,
    "dht_restrict_search_ips": False,
    "dht_enforce_node_id": False,
    "dht_prefer_verified_node_ids": False,
    "dht_ignore_dark_internet": False,
    "dht_block_ratelimit": 100_000,
    "dht_upload_rate_limit": 10_000_000,
    "alert_mask": ALERTS,
    # Every query a session answers posts an alert; a session nobody polls for a while must not
    # drop the alert a test then waits for.
    "alert_queue_size": 1_000_000,
}


class LtNode:
    """One libtorrent session."""

    def __init__(self) -> None:
        self.session = lt.session(SETTINGS)
        self.port = self.session.listen_port()
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def wait(self, match: Callable[[Any], bool], timeout: float = 15.0) -> Any:
        """The first new alert that ``match`` accepts; TimeoutError after ``timeout``.

        Alerts that do not match are dropped: libtorrent reuses an alert's memory at the next
        pop, so none can be kept. For the same reason the alert returned is valid only until
        the next wait on this session: read what you need from it first.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no matching libtorrent alert")
                self.session.wait_for_alert(max(1, int(left * 1000)))
                for alert in self.session.pop_alerts():
                    if match(alert):
                        return alert

    def routing_nodes(self) -> int:
        self.session.post_dht_stats()
        stats = self.wait(lambda a: isinstance(a, lt.dht_stats_alert), 5.0)
        return sum(int(b["num_nodes"]) for b in stats.routing_table)


class LtNetwork:
    def __init__(self, size: int = 8) -> None:
        self.nodes = [LtNode() for _ in range(size)]
        for a in self.nodes:
            for b in self.nodes:
                if a is not b:
                    a.session.add_dht_node(b.address)

    def wait_ready(self, min_nodes: int = 3, timeout: float = 20.0) -> None:
        """Until every session has ``min_nodes`` others in its routing table (polled on stats alerts)."""
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while node.routing_nodes() < min_nodes:
                if time.monotonic() > deadline:
                    raise TimeoutError("the libtorrent DHT did not form")
                node.session.wait_for_alert(200)  # woken by the DHT's next alert, if any, before asking again

    @property
    def routers(self) -> list[str]:
        return [f"127.0.0.1:{n.port}" for n in self.nodes]

    def close(self) -> None:
        for node in self.nodes:
            del node.session
        self.nodes.clear()

    def __iter__(self) -> Iterator[LtNode]:
        return iter(self.nodes)


def lt_secret_key(seed: bytes) -> bytes:
    """libtorrent's 64-byte ed25519 secret key for ``seed`` (the clamped SHA-512 of the seed, as ref10
    keeps it); libtorrent's Python binding signs with this form, pynacl with the seed."""
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return bytes(h)
