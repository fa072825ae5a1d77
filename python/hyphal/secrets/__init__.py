"""The replicated secret store (seed 000) on the DHT: docs/PROTOCOL.md §11.10."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.secrets.records import SecretRecord, SecretRequest, locator, secret_id
    from hyphal.secrets.secret_store import SecretStore

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SecretRecord": ".records",
        "SecretRequest": ".records",
        "locator": ".records",
        "secret_id": ".records",
        "SecretStore": ".secret_store",
    },
)

__all__ = ["SecretRecord", "SecretRequest", "SecretStore", "locator", "secret_id"]
