"""Raw TCP loopback throughput between two processes: the baseline for transfer rows.

A child process connects to a listener in this process and writes ``total``
bytes with ``sendall`` of 1 MiB buffers; this process reads them with
``recv_into`` a preallocated buffer (no copies). Nothing is framed, encrypted
or verified, so this is what the kernel's loopback path and one core on each
side can move, and every replication or blob transfer row is compared with it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

_SENDER = r"""
import socket, sys
host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = bytes(1 << 20)
with socket.create_connection((host, port)) as s:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = 0
    while sent < total:
        n = min(len(buf), total - sent)
        s.sendall(memoryview(buf)[:n])
        sent += n
"""


def tcp_loopback_seconds(total: int, host: str = "127.0.0.1") -> float:
    """Seconds to move ``total`` bytes from a child process to this one over TCP.

    Timed from the accepted connection to the last byte received, so process
    start-up is not counted.
    """
    with socket.create_server((host, 0)) as server:
        port = server.getsockname()[1]
        child = subprocess.Popen([sys.executable, "-c", _SENDER, host, str(port), str(total)])
        try:
            conn, _ = server.accept()
            with conn:
                buf = bytearray(1 << 20)
                view = memoryview(buf)
                got = 0
                t0 = time.perf_counter()
                while got < total:
                    n = conn.recv_into(view)
                    if n == 0:
                        raise RuntimeError(f"sender closed after {got} of {total} bytes")
                    got += n
                elapsed = time.perf_counter() - t0
        finally:
            if child.wait(timeout=60) != 0:
                raise RuntimeError(f"loopback sender exited with {child.returncode}")
    return elapsed


def tcp_loopback_best(total: int, repeat: int, host: str = "127.0.0.1") -> float:
    """The best of ``repeat`` runs of :func:`tcp_loopback_seconds`, in seconds."""
    return min(tcp_loopback_seconds(total, host) for _ in range(repeat))


__all__ = ["tcp_loopback_best", "tcp_loopback_seconds"]
