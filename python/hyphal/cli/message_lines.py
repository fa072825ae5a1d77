"""How a group message reads on a terminal (``hyphal msg watch`` and ``hyphal watch``)."""

from __future__ import annotations

from typing import Any


def message_line(event: dict[str, Any]) -> str:
    """``message from alice [topic] (via relay): text`` for one ``"message"`` event."""
    sender = event["sender_name"] or event["sender"][:16]
    topic = f" [{event['topic']}]" if event["topic"] else ""
    via = "" if event["direct"] else f" (via {event['via'][:16]}…)"
    body = event["text"] if event["text"] is not None else f"<{len(event['body_hex']) // 2} bytes>"
    return f"message from {sender}{topic}{via}: {body}"


__all__ = ["message_line"]
