"""The replicated secret store (seed 000) on the DHT: docs/PROTOCOL.md §11.10."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.secrets.config import SecretsConfig
    from hyphal.secrets.node_secrets import HeldSecret, NodeSecrets
    from hyphal.secrets.owned import OwnedSecret
    from hyphal.secrets.records import SecretRecord, SecretRequest, locator, secret_id
    from hyphal.secrets.secret_store import Handoff, SecretStore

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "SecretsConfig": ".config",
        "HeldSecret": ".node_secrets",
        "NodeSecrets": ".node_secrets",
        "OwnedSecret": ".owned",
        "SecretRecord": ".records",
        "SecretRequest": ".records",
        "locator": ".records",
        "secret_id": ".records",
        "Handoff": ".secret_store",
        "SecretStore": ".secret_store",
    },
)

__all__ = [
    "Handoff",
    "HeldSecret",
    "NodeSecrets",
    "OwnedSecret",
    "SecretRecord",
    "SecretRequest",
    "SecretStore",
    "SecretsConfig",
    "locator",
    "secret_id",
]
