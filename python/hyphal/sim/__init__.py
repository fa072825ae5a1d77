"""``hyphal.sim``: a deterministic simulator running the real sans-I/O state machines."""

from __future__ import annotations

from hyphal.sim.network import EPOCH, SimHost, Simulator, host_address, keypair_for

__all__ = ["EPOCH", "SimHost", "Simulator", "host_address", "keypair_for"]
