"""A request's params, checked: a wrong type or a missing key is a typed error, not a crash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyphal.errors import InvalidInput


class Params:
    def __init__(self, method: str, raw: object, allowed: frozenset[str]) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InvalidInput(f"{method}: params must be a JSON object")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise InvalidInput(f"{method}: unknown param {unknown[0]!r}")
        self._method = method
        self._raw: dict[str, Any] = raw

    def opt_text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{self._method}: param {key!r} must be a string")
        return value

    def text(self, key: str) -> str:
        value = self.opt_text(key)
        if value is None:
            raise InvalidInput(f"{self._method}: param {key!r} is required")
        return value

    def flag(self, key: str) -> bool:
        value = self._raw.get(key, False)
        if not isinstance(value, bool):
            raise InvalidInput(f"{self._method}: param {key!r} must be true or false")
        return value

    def path(self, key: str) -> Path:
        """An absolute path: the daemon's working dir is not the caller's."""
        path = Path(self.text(key))
        if not path.is_absolute():
            raise InvalidInput(f"{self._method}: param {key!r} must be an absolute path")
        return path

    def opt_int(self, key: str, minimum: int = 0) -> int | None:
        value = self._raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise InvalidInput(f"{self._method}: param {key!r} must be an integer of at least {minimum}")
        return value

    def opt_seconds(self, key: str) -> float | None:
        value = self._raw.get(key)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if value is not None and (not number or value <= 0):
            raise InvalidInput(f"{self._method}: param {key!r} must be a positive number of seconds")
        return None if value is None else float(value)

    def hex32(self, key: str) -> bytes:
        text = self.text(key)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            value = b""
        if len(value) != 32:
            raise InvalidInput(f"{self._method}: param {key!r} must be 32 bytes in hex")
        return value


__all__ = ["Params"]
