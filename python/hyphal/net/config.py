"""The limits and timers of a connection (:class:`ConnectionConfig`), checked when made."""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.errors import InvalidInput
from hyphal.net.frames import DEFAULT_MAX_FRAME, check_max_frame
from hyphal.net.handshake import MAX_USER_DATA
from hyphal.net.mux import DEFAULT_BATCH_SIZE, DEFAULT_MAX_PENDING, DEFAULT_WINDOW


@dataclass(frozen=True)
class ConnectionConfig:
    """Limits and timers of a connection; the defaults suit bulk replication over the internet."""

    handshake_timeout: float = 10.0
    """Seconds for the dial (the TCP connect, say) plus the whole handshake."""
    keepalive_interval: float | None = 15.0
    """Send a PING when nothing was sent for this long; ``None`` never pings."""
    idle_timeout: float | None = 45.0
    """Close when nothing was received for this long, or a write to the socket
    made no progress for this long; ``None`` never.

    Keep it above twice the peer's keepalive interval."""
    max_frame: int = DEFAULT_MAX_FRAME
    """Largest frame plaintext this side accepts (announced in the handshake)."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Small messages are packed into frames of up to this many bytes."""
    channel_window: int = DEFAULT_WINDOW
    """Bytes of credit this side grants per channel: the most it buffers for an unread channel."""
    send_buffer: int = 1024 * 1024
    """Bytes queued for the socket beyond which :meth:`Channel.send` waits."""
    read_size: int = 1024 * 1024
    """Largest read from the socket (asyncio hands over at most 256 KiB at a time)."""
    close_timeout: float = 2.0
    """Seconds a graceful close may take before the socket is dropped."""
    max_pending_channels: int = DEFAULT_MAX_PENDING
    """Incoming channel requests held unanswered; more are rejected."""
    user_data: bytes = b""
    """Application data sent in the handshake (a node's capabilities, say)."""

    def __post_init__(self) -> None:
        check_max_frame(self.max_frame)
        for name in ("handshake_timeout", "close_timeout", "keepalive_interval", "idle_timeout"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInput(f"{name} must be positive")
        if self.send_buffer < 1 or self.read_size < 1 or self.max_pending_channels < 0:
            raise InvalidInput("send_buffer, read_size and max_pending_channels must be positive")
        if len(self.user_data) > MAX_USER_DATA:
            raise InvalidInput(f"user_data is limited to {MAX_USER_DATA} bytes")


__all__ = ["ConnectionConfig"]
