"""Benchmarks for hyphal: ``python -m benches SUITE`` (see benches/README.md).

Every row of every suite measures its own baseline in the same run, so the
ratios hold on any machine even though the absolute figures drift.
"""

from __future__ import annotations

#: Suite name -> ``"module:function"``. The function takes ``quick: bool`` and
#: returns a list of :class:`benches.harness.Row`. Modules are imported only
#: when their suite is run, so one broken suite never breaks the others.
SUITES: dict[str, str] = {
    "core": "benches.core:run",
    "dht": "benches.dht:run",
    "replicate": "benches.replicate:run",
    "blobs": "benches.blobs:run",
    "group": "benches.group:run",
    "mainline": "benches.mainline:run",
}

__all__ = ["SUITES"]
