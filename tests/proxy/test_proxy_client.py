"""The toxiproxy-python 0.1.1 client against the server (reference §4)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from proxy_helpers import connect, free_port, recv_exactly


@pytest.fixture
def toxiproxy(api, server) -> Toxiproxy:
    client = Toxiproxy()
    url = urlsplit(server.url)
    client.update_api_consumer(url.hostname, url.port)
    return client


def echo_once(listen: str, payload: bytes = b"ping") -> bytes:
    host, port = listen.rsplit(":", 1)
    sock = connect((host, int(port)))
    sock.sendall(payload)
    data = recv_exactly(sock, len(payload))
    sock.close()
    return data


def test_create_list_and_destroy(toxiproxy, echo_upstream):
    proxy = toxiproxy.create(upstream=echo_upstream.address, name="echo")
    assert proxy.name == "echo" and proxy.enabled is True
    assert not proxy.listen.endswith(":0")
    assert echo_once(proxy.listen) == b"ping"
    assert set(toxiproxy.proxies()) == {"echo"}
    assert toxiproxy.get_proxy("echo").listen == proxy.listen
    assert toxiproxy.get_proxy("missing") is None
    with pytest.raises(ProxyExists):
        toxiproxy.create(upstream=echo_upstream.address, name="echo")
    assert toxiproxy.destroy("echo") is False  # only Proxy objects are destroyed
    toxiproxy.destroy(proxy)
    assert toxiproxy.proxies() == {}


def test_created_disabled_keeps_listen(toxiproxy):
    listen = f"127.0.0.1:{free_port()}"
    proxy = toxiproxy.create(upstream="127.0.0.1:1", name="off", listen=listen, enabled=False)
    assert proxy.listen == listen and proxy.enabled is False


def test_toxics_add_list_get_destroy(toxiproxy, echo_upstream):
    proxy = toxiproxy.create(upstream=echo_upstream.address, name="echo")
    proxy.add_toxic(type="latency", attributes={"latency": 100, "jitter": 5})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="bw", toxicity=0.5, attributes={"rate": 1000})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "bw"}
    assert toxics["latency_downstream"].attributes == {"latency": 100, "jitter": 5}
    assert toxics["bw"].toxicity == 0.5 and toxics["bw"].stream == "upstream"
    assert proxy.get_toxic("bw").type == "bandwidth"
    with pytest.raises(ProxyExists):  # 409 maps to ProxyExists in this client
        proxy.add_toxic(type="latency", attributes={"latency": 1})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="nonsense")
    proxy.destroy_toxic("bw")
    assert set(proxy.toxics()) == {"latency_downstream"}
    with pytest.raises(NotFound):
        proxy.destroy_toxic("bw")


def test_disable_enable_and_down_keep_the_port(toxiproxy, echo_upstream):
    proxy = toxiproxy.create(upstream=echo_upstream.address, name="echo")
    proxy.disable()
    assert toxiproxy.get_proxy("echo").enabled is False
    proxy.enable()
    assert toxiproxy.get_proxy("echo").listen == proxy.listen
    assert echo_once(proxy.listen) == b"ping"
    with proxy.down():
        assert toxiproxy.get_proxy("echo").enabled is False
        host, port = proxy.listen.rsplit(":", 1)
        with pytest.raises(OSError):
            connect((host, int(port)), timeout=1).close()
    assert echo_once(proxy.listen) == b"ping"


def test_reset_and_version(toxiproxy, echo_upstream, server):
    proxy = toxiproxy.create(upstream=echo_upstream.address, name="echo")
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    proxy.disable()
    assert toxiproxy.reset() is True
    again = toxiproxy.get_proxy("echo")
    assert again.enabled is True and again.toxics() == {} and again.listen == proxy.listen
    assert echo_once(proxy.listen) == b"ping"
    assert toxiproxy.running() is True
    assert toxiproxy.version().startswith(b'{"version": ')


def test_client_side_populate_and_destroy_all(toxiproxy):
    created = toxiproxy.populate([
        {"name": "a", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
        {"name": "b", "upstream": "127.0.0.1:2", "listen": "127.0.0.1:0"}])
    assert sorted(p.name for p in created) == ["a", "b"]
    toxiproxy.destroy_all()
    assert toxiproxy.proxies() == {}
