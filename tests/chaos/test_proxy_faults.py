"""The proxy fault driver against a real fault proxy server and a real Redis behind it."""
from __future__ import annotations

import sys
import time
from types import SimpleNamespace

import httpx
import pytest
import redis as redis_lib

from chaos import recovery
from chaos.experiment import Fault
from chaos.fault_session import FaultSession
from chaos.faults.proxy import ProxyDriver
from chaos.proxy.facade import FaultProxy
from lab.servers.base import ManagedProcess, ServerSpec, free_port, wait_until

pytestmark = [pytest.mark.infra]


@pytest.fixture
def proxied_redis(servers, tmp_path):
    r = servers.redis("redis-us-east")
    api_port = free_port()
    spec = ServerSpec(name="proxy", role="proxy", log_file=tmp_path / "proxy.log", ports={"main": api_port},
                      argv=[sys.executable, "-m", "chaos.proxy", "serve", "--host", "127.0.0.1",
                            "--port", str(api_port)])
    proc = ManagedProcess(spec)
    proc.start()
    api = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: httpx.get(api + "/version", timeout=1).status_code == 200, timeout=30,
                   what="fault proxy", alive=proc.alive)
        upstream = f"127.0.0.1:{r.port}"
        links = {name: {"listen": f"127.0.0.1:{free_port()}", "upstream": upstream, "from": name.split(">")[0],
                        "to": name.split(">")[1], "regions": regions}
                 for name, regions in {"chat-us-east-1>redis-us-east": ["us-east"],
                                       "nats-us-east>nats-eu-west": ["us-east", "eu-west"],
                                       "chat-eu-west-1>redis-eu-west": ["eu-west"]}.items()}
        proxy = FaultProxy(api)
        proxy.ensure_links(links)
        state = SimpleNamespace(links=links, processes={}, state_dir=str(tmp_path), runtime="local",
                                proxy=SimpleNamespace(api=api))
        yield ProxyDriver(state, proxy), links, tmp_path
        proxy.close()
    finally:
        proc.stop(grace=5)


def ping(links, name, timeout=2.0) -> float | None:
    host, port = links[name]["listen"].split(":")
    client = redis_lib.Redis(host=host, port=int(port), socket_timeout=timeout, socket_connect_timeout=timeout)
    began = time.monotonic()
    try:
        client.ping()
        return time.monotonic() - began
    except redis_lib.RedisError:
        return None
    finally:
        client.close()


def fault(kind, target, **kw):
    return Fault.model_validate({"kind": kind, "target": target, "at": 0, "for": 1, "id": "f1", **kw})


def test_cut_toxic_and_partition_are_applied_and_rolled_back(proxied_redis):
    driver, links, state_dir = proxied_redis
    us, both, eu = "chat-us-east-1>redis-us-east", "nats-us-east>nats-eu-west", "chat-eu-west-1>redis-eu-west"
    assert ping(links, us) is not None
    with FaultSession(str(state_dir), {"proxy": driver}) as session:
        session.apply(session.plan(fault("proxy.cut", "chat-*>redis-us-east")))
        assert ping(links, us) is None and ping(links, eu) is not None
        session.rollback("f1")
        assert ping(links, us) is not None

        applied = session.apply(session.plan(fault("proxy.toxic", us, toxic="latency",
                                                   attributes={"latency": 300})))
        assert applied.params["name"].startswith("nines-")
        assert ping(links, us) >= 0.3
        session.rollback("f1")
        assert ping(links, us) < 0.3

        applied = session.apply(session.plan(fault("proxy.partition", "us-east")))
        assert applied.targets == [us, both]
        assert ping(links, us) is None and ping(links, both) is None and ping(links, eu) is not None
    # leaving the session restored the partition
    assert ping(links, us) is not None and ping(links, both) is not None
    assert not list(recovery.faults_dir(state_dir).glob("*.json"))


def test_a_crashed_engines_proxy_faults_are_healed(proxied_redis):
    driver, links, state_dir = proxied_redis
    us = "chat-us-east-1>redis-us-east"
    applied = driver.plan(fault("proxy.toxic", us, toxic="timeout", attributes={"timeout": 0}), experiment="x")
    applied.owner_pid = 999_999_999            # an engine that is gone
    recovery.record(state_dir, applied)
    driver.apply(applied)
    assert ping(links, us, timeout=0.5) is None
    healed = recovery.heal_leftovers(state_dir, drivers={"proxy": driver})
    assert healed == [f"proxy.toxic {us} (f1 of x)"]
    wait_until(lambda: ping(links, us) is not None, timeout=10, what="healed link")


def test_an_unknown_link_names_the_line(proxied_redis):
    driver, _, _ = proxied_redis
    with pytest.raises(Exception, match=r"exp.yaml:7: target: no proxy link matches 'chat-\*>redis-us-eats'"):
        driver.plan(fault("proxy.cut", "chat-*>redis-us-eats"), path="exp.yaml", line=7)
