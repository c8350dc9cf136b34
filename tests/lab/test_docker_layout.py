"""The compose files are what the topology gives, and they keep the lab's network rules."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from lab.runtime.docker_compose import compose, render
from lab.runtime.docker_layout import PROXY_NAME, DockerLayout
from lab.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]


def test_committed_compose_files_match_the_topology():
    for rel, text in render().items():
        assert (ROOT / rel).read_text() == text, f"{rel} is stale: run python -m lab.runtime.docker_compose"


def test_every_published_port_is_on_loopback_only():
    for name, service in compose()["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)


def test_every_dependency_and_route_goes_through_the_proxy():
    layout = DockerLayout(load_topology().plan("full"))
    proxies = {p["name"]: p for p in layout.proxies()}
    assert len({p["listen"] for p in proxies.values()}) == len(proxies)
    routes = layout.nats_routes("nats-us-east")
    assert sorted(routes) == sorted(f"{PROXY_NAME}:{layout.link_port(f'nats-us-east>{peer}')}"
                                    for peer in ("nats-eu-west", "nats-ap-south"))
    assert proxies["nats-us-east>nats-eu-west"]["upstream"] == "nats-eu-west:6222"
    assert proxies["chat-us-east-1>pg-us-east"]["upstream"] == "pg-us-east:5432"


def test_second_replicas_are_in_the_full_profile_only_and_nothing_restarts_by_itself():
    services = compose()["services"]
    quick = {p.name for p in load_topology().plan("quick").processes}
    for name, service in services.items():
        assert service["restart"] == "no"
        if name != PROXY_NAME and name not in quick:
            assert service["profiles"] == ["full"]
    assert "profiles" not in services["chat-us-east-1"]
    assert services["chat-us-east-2"]["profiles"] == ["full"]


def test_host_ports_never_move_between_profiles():
    layout = DockerLayout(load_topology().plan("full"))
    ports = [layout.host_ports(p.name)["main"] for p in layout.containers()]
    assert len(set(ports)) == len(ports)
    assert json.loads((ROOT / "docker/toxiproxy.json").read_text()) == layout.proxies()
    assert yaml.safe_load((ROOT / "docker-compose.yml").read_text())["networks"]["lab"]["name"] == "nineslab"
