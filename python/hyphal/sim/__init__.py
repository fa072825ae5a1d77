"""``hyphal.sim``: a deterministic simulator running the real sans-I/O state machines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.sim.network import EPOCH, SimHost, Simulator, host_address, keypair_for

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EPOCH": ".network",
        "SimHost": ".network",
        "Simulator": ".network",
        "host_address": ".network",
        "keypair_for": ".network",
    },
)

__all__ = ["EPOCH", "SimHost", "Simulator", "host_address", "keypair_for"]
