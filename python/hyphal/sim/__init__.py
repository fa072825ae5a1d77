"""``hyphal.sim``: a deterministic simulator running the real state machines and, on a virtual-time
event loop (``clock``) and network (``streams``), the real anyio services and nodes (``system``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.sim.clock import VirtualLoop, run
    from hyphal.sim.network import EPOCH, SimHost, Simulator, host_address, keypair_for
    from hyphal.sim.node import SimNode
    from hyphal.sim.streams import StreamNetwork
    from hyphal.sim.system import SystemSimulator

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EPOCH": ".network",
        "SimHost": ".network",
        "Simulator": ".network",
        "host_address": ".network",
        "keypair_for": ".network",
        "VirtualLoop": ".clock",
        "run": ".clock",
        "SimNode": ".node",
        "StreamNetwork": ".streams",
        "SystemSimulator": ".system",
    },
)

__all__ = [
    "EPOCH",
    "SimHost",
    "SimNode",
    "Simulator",
    "StreamNetwork",
    "SystemSimulator",
    "VirtualLoop",
    "host_address",
    "keypair_for",
    "run",
]
