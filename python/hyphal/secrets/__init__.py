"""The replicated secret store (seed 000) on the DHT: docs/PROTOCOL.md §11.10."""

from __future__ import annotations

from hyphal.secrets.records import SecretRecord, SecretRequest, locator, secret_id
from hyphal.secrets.store import SecretStore

__all__ = ["SecretRecord", "SecretRequest", "SecretStore", "locator", "secret_id"]
