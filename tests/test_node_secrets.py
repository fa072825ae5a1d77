"""The secret store in ``Node``, in one process on real UDP sockets: the hand-off that keeps a
secret whose only holder leaves, and the config's checks."""

from __future__ import annotations

import anyio
import anyio.abc
import pytest

from hyphal.errors import InvalidInput
from hyphal.node import Node
from hyphal.secrets import SecretsConfig, secret_id
from hyphal.xor import xor_distance

pytestmark = pytest.mark.anyio
WAIT = 60.0
URL = "https://api.example.com"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_holders_that_stop_one_after_another_hand_the_secret_on() -> None:
    """One replica, four nodes: a secret lives on the one or two nodes nearest its id. They stop
    gracefully, nearest first, each handing the secret on (past the one that left already, still
    in its table), so it stays readable with every node that ever held it gone."""
    config = SecretsConfig(replicas=1)
    nodes: list[Node] = []
    stops: dict[Node, anyio.Event] = {}
    gone: dict[Node, anyio.Event] = {}

    async def run(node: Node, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Each node in its own task, so any one of them can stop first.
        stops[node], gone[node] = anyio.Event(), anyio.Event()
        async with node:
            task_status.started()
            await stops[node].wait()
        gone[node].set()

    def holds(node: Node) -> bool:
        return sid in {h.id for h in node.secrets.held()}

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            for i in (31, 32, 33, 34):
                seed = [f"127.0.0.31:{nodes[0].address[1]}"] if nodes else []
                nodes.append(Node(listen=f"127.0.0.{i}:0", bootstrap=seed, secrets=config))
                await tg.start(run, nodes[-1])
            owner = nodes[0]
            await owner.secrets.put(URL, b"s3cret")
            for reader in nodes[1:]:
                await owner.secrets.grant(URL, reader.public_key)
            sid = secret_id(owner.public_key, URL)
            by_distance = sorted(nodes, key=lambda n: xor_distance(n.dht.node.id, sid))
            holders = [n for n in by_distance if holds(n)]
            assert 1 <= len(holders) <= 2
            for holder in holders:
                stops[holder].set()
                await gone[holder].wait()
            rest = [n for n in by_distance if n not in holders]
            assert holds(rest[0])
            assert await rest[1].secrets.get(URL, owner.public_key) == b"s3cret"
            for node in rest:
                stops[node].set()


def test_the_config_names_the_bad_field() -> None:
    assert SecretsConfig().replicas == 5
    for bad, field in (
        ({"replicas": 0}, "secrets.replicas"),
        ({"replicas": True}, "secrets.replicas"),
        ({"interval": -1.0}, "secrets.interval"),
        ({"handoff_timeout": "5"}, "secrets.handoff_timeout"),
    ):
        with pytest.raises(InvalidInput, match=field):
            SecretsConfig(**bad)  # type: ignore[arg-type]
