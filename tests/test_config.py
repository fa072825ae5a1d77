"""Config: defaults, every section from TOML, ``Node`` keywords, and errors that name ``section.key``."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.config import DEFAULT_LISTEN, BlobsConfig, NodeConfig
from hyphal.dht.config import DhtConfig
from hyphal.errors import InvalidInput
from hyphal.net.config import ConnectionConfig
from hyphal.node import Node
from hyphal.replication.state import ReplicatorConfig
from hyphal.secrets.config import SecretsConfig


def test_a_missing_file_is_all_defaults(tmp_path: Path) -> None:
    config = NodeConfig.load(tmp_path / "none.toml")
    assert config.listen == DEFAULT_LISTEN
    assert config.bootstrap == ()
    assert config.identity_path == config.data_dir / "identity"
    assert (config.dht, config.connection, config.blobs) == (DhtConfig(), ConnectionConfig(), BlobsConfig())


def test_keys_are_read_and_data_dir_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "~/x"\nlisten = "127.0.0.1:9"\nbootstrap = ["a:1", "b:2"]\n')
    config = NodeConfig.load(path)
    assert config.data_dir == Path("~/x").expanduser()
    assert (config.listen, config.bootstrap) == ("127.0.0.1:9", ("a:1", "b:2"))
    assert NodeConfig.load(path, data_dir=tmp_path).data_dir == tmp_path


def test_every_section_round_trips_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'name = "laptop"\nadvertise = ["203.0.113.7:7300"]\nbackup_authorize = ["ab"]\n'
        "[dht]\nk = 8\nalpha = 2\ndisjoint_paths = 2\nrecord_ttl = 60\nclient = true\n"
        "[connection]\nidle_timeout = 30.5\nkeepalive_interval = false\nmax_frame = 65536\n"
        "[replication]\nmax_window = 8\nrequest_timeout = 5\n"
        "[blobs]\ngc_interval = 120\n"
        "[secrets]\nreplicas = 3\nhandoff_timeout = 4\n"
    )
    config = NodeConfig.load(path)
    assert config.name == "laptop"
    assert config.advertise == ("203.0.113.7:7300",)
    assert config.backup_authorize == ("ab",)
    assert config.dht == DhtConfig(k=8, alpha=2, disjoint_paths=2, record_ttl=60.0, client=True)
    assert isinstance(config.dht.record_ttl, float)  # an integer in a float field is a float
    assert config.connection == ConnectionConfig(idle_timeout=30.5, keepalive_interval=None, max_frame=65536)
    assert config.replication == ReplicatorConfig(max_window=8, request_timeout=5.0)
    assert config.blobs == BlobsConfig(gc_interval=120.0)
    assert config.secrets == SecretsConfig(replicas=3, handoff_timeout=4.0)
    path.write_text("[blobs]\ngc_interval = false\n")
    assert NodeConfig.load(path).blobs.gc_interval is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # wrong types
        ("listen = 7300", "listen must be a string"),
        ("bootstrap = [1]", "bootstrap must be a list of strings"),
        ("bootstrap = 'a:1'", "bootstrap must be a list of strings"),
        ("[dht]\nalpha = 'three'", "dht.alpha must be an integer"),
        ("[dht]\nalpha = true", "dht.alpha must be an integer"),
        ("[dht]\nalpha = 2.5", "dht.alpha must be an integer"),
        ("[dht]\nclient = 1", "dht.client must be true or false"),
        ("[connection]\nidle_timeout = 'soon'", "connection.idle_timeout must be a number"),
        ("[replication]\nmax_window = [1]", "replication.max_window must be an integer"),
        ("[blobs]\ngc_interval = '1h'", "blobs.gc_interval must be a number"),
        ("dht = 3", "dht must be a table"),
        # unknown keys
        ("colour = 'red'", "unknown key 'colour'"),
        ("[dht]\nalfa = 3", "unknown key 'dht.alfa'"),
        ("[connection]\nidle = 3", "unknown key 'connection.idle'"),
        ("[secret_store]\nx = 1", "unknown key 'secret_store'"),
        # bad values
        ("[dht]\nk = 0", "dht.k must be at least 1"),
        ("[dht]\nrate = -1", "dht.rate must not be negative"),
        ("[connection]\nhandshake_timeout = 0", "connection.handshake_timeout must be positive"),
        ("[connection]\nmax_frame = 3", "connection.max_frame"),
        ("[replication]\ninitial_window = 0", "replication.initial_window"),
        ("[blobs]\ngc_interval = 0", "blobs.gc_interval must be positive"),
        ("[secrets]\nreplicas = 0", "secrets.replicas"),
        ("[secrets]\nreplica = 3", "secrets.replica"),
        ("[dht]\nvalidate_mutable = 'x'", "dht.validate_mutable cannot be set in a config file"),
        ("[connection]\nuser_data = 'x'", "connection.user_data cannot be set in a config file"),
        ("listen = ", "not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as info:
        NodeConfig.load(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_node_keywords_override_the_config() -> None:
    base = NodeConfig(listen="127.0.0.1:0", name="from-file", dht=DhtConfig(k=4))
    node = Node(config=base, name="from-keyword", dht=DhtConfig(k=8), bootstrap=["a:1"])
    assert (node.config.name, node.config.dht.k, node.config.bootstrap) == ("from-keyword", 8, ("a:1",))
    assert node.config.listen == "127.0.0.1:0"
    assert Node().config.listen == "127.0.0.1:0"  # no config: loopback, any port
    with pytest.raises(InvalidInput, match="unknown node option"):
        base.overridden(colour="red")


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_dht_config_given_to_node_reaches_the_dht() -> None:
    connection = ConnectionConfig(idle_timeout=30.0)
    replication = ReplicatorConfig(max_window=4)
    async with Node(dht=DhtConfig(k=8, alpha=2), connection=connection, replication=replication) as node:
        assert node.dht.node.config.k == 8
        assert node.dht.node.config.alpha == 2
        assert node.pool._config is connection
        assert node.feeds._config is replication
