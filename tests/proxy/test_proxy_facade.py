"""The chaos engine's facade (FaultProxy) and the launcher, against a real server."""
from __future__ import annotations

import sys

import pytest

from chaos.proxy.facade import FaultProxy
from chaos.proxy.launch import external_url, server_command, server_kind
from lab.errors import DependencyError, UsageError
from proxy_helpers import connect, free_port, recv_exactly


@pytest.fixture
def fault_proxy(api, server):
    with FaultProxy(server.url) as proxy:
        yield proxy


def links_for(upstream: str) -> dict[str, dict]:
    return {
        "chat-us-east-1>pg-us-east": {"listen": f"127.0.0.1:{free_port()}", "upstream": upstream,
                                      "regions": ["us-east"]},
        "nats-us-east>nats-eu-west": {"listen": f"127.0.0.1:{free_port()}", "upstream": upstream,
                                      "regions": ["us-east", "eu-west"]},
        "chat-eu-west-1>pg-eu-west": {"listen": f"127.0.0.1:{free_port()}", "upstream": upstream,
                                      "regions": ["eu-west"]},
    }


def echo_ok(listen: str) -> bool:
    host, port = listen.rsplit(":", 1)
    try:
        sock = connect((host, int(port)), timeout=2)
    except OSError:
        return False
    try:
        sock.sendall(b"hi")
        return recv_exactly(sock, 2) == b"hi"
    except OSError:
        return False
    finally:
        sock.close()


def test_ensure_links_is_idempotent_and_keeps_toxics(fault_proxy, echo_upstream):
    links = links_for(echo_upstream.address)
    created = fault_proxy.ensure_links(links)
    assert set(created) == set(links)
    assert all(echo_ok(link["listen"]) for link in links.values())
    name = fault_proxy.add_toxic("chat-us-east-1>pg-us-east", "latency", {"latency": 10})
    assert name == "latency_downstream"
    again = fault_proxy.ensure_links(links)
    assert [t["name"] for t in again["chat-us-east-1>pg-us-east"]["toxics"]] == ["latency_downstream"]
    assert fault_proxy.ensure_links({}) == {}


def test_toxic_lifecycle(fault_proxy, echo_upstream):
    links = links_for(echo_upstream.address)
    fault_proxy.ensure_links(links)
    link = "chat-us-east-1>pg-us-east"
    name = fault_proxy.add_toxic(link, "bandwidth", {"rate": 100}, stream="upstream", toxicity=0.5, name="slow")
    assert name == "slow"
    fault_proxy.update_toxic(link, "slow", {"rate": 200.0})  # integral floats travel as ints
    toxic = fault_proxy.list_links()[link]["toxics"][0]
    assert toxic["attributes"] == {"rate": 200} and toxic["toxicity"] == 0.5
    fault_proxy.remove_toxic(link, "slow")
    assert fault_proxy.list_links()[link]["toxics"] == []


def test_cut_restore_cut_region_and_reset(fault_proxy, echo_upstream):
    links = links_for(echo_upstream.address)
    fault_proxy.ensure_links(links)
    fault_proxy.cut("chat-us-east-1>pg-us-east")
    assert not echo_ok(links["chat-us-east-1>pg-us-east"]["listen"])
    fault_proxy.restore("chat-us-east-1>pg-us-east")
    assert echo_ok(links["chat-us-east-1>pg-us-east"]["listen"])
    cut = fault_proxy.cut_region("eu-west", links)
    assert cut == ["chat-eu-west-1>pg-eu-west", "nats-us-east>nats-eu-west"]
    state = fault_proxy.list_links()
    assert [name for name in sorted(state) if not state[name]["enabled"]] == cut
    fault_proxy.add_toxic("chat-us-east-1>pg-us-east", "latency", {"latency": 10})
    fault_proxy.reset()
    state = fault_proxy.list_links()
    assert all(p["enabled"] and p["toxics"] == [] for p in state.values())
    assert all(echo_ok(link["listen"]) for link in links.values())


def test_errors_become_lab_errors(fault_proxy, echo_upstream):
    with pytest.raises(UsageError, match="proxy not found") as info:
        fault_proxy.add_toxic("no-such-link", "latency", {"latency": 1})
    assert info.value.__cause__ is not None
    fault_proxy.ensure_links(links_for(echo_upstream.address))
    with pytest.raises(UsageError, match="invalid toxic type"):
        fault_proxy.add_toxic("chat-us-east-1>pg-us-east", "bogus", {})
    with pytest.raises(UsageError, match="needs 'listen' and 'upstream'"):
        fault_proxy.ensure_links({"x": {"listen": "127.0.0.1:0"}})
    port = int(fault_proxy.list_links()["chat-us-east-1>pg-us-east"]["listen"].rsplit(":", 1)[1])
    with pytest.raises(DependencyError, match="address already in use"):
        fault_proxy.ensure_links({"clash": {"listen": f"127.0.0.1:{port}", "upstream": "127.0.0.1:1"}})


def test_unreachable_server():
    with FaultProxy(f"http://127.0.0.1:{free_port()}", timeout=2) as proxy:
        assert proxy.healthy() is False
        with pytest.raises(DependencyError, match="did not answer") as info:
            proxy.reset()
        assert info.value.__cause__ is not None


def test_healthy(fault_proxy):
    assert fault_proxy.healthy() is True


def test_server_command_prefers_the_real_server():
    assert server_command("127.0.0.1", 8474, seed=3, which=lambda name: "/usr/bin/toxiproxy-server") == \
        ["/usr/bin/toxiproxy-server", "-host", "127.0.0.1", "-port", "8474", "-seed", "3"]
    assert server_command("127.0.0.1", 9000, which=lambda name: None) == \
        [sys.executable, "-m", "chaos.proxy", "serve", "--host", "127.0.0.1", "--port", "9000"]
    assert server_kind(which=lambda name: None) == "nineslab"


def test_external_url():
    assert external_url({}) is None
    assert external_url({"TOXIPROXY_URL": "http://127.0.0.1:8474/"}) == "http://127.0.0.1:8474"
    assert external_url({"TOXIPROXY_URL": "localhost:8474"}) == "http://localhost:8474"
    with pytest.raises(UsageError, match="TOXIPROXY_URL"):
        external_url({"TOXIPROXY_URL": "ftp://x"})
