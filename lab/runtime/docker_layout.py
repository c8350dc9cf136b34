"""Where everything lives when the lab runs under docker compose: a pure function of the plan.

Inside the compose network every part is a container named after its process and listens
on its role's conventional port (PostgreSQL 5432, Redis 6379, NATS 4222/6222/8222, our
services 8080, the fault proxy's API 8474). Every link is a proxy listening on the fault
proxy container at ``21000 + i`` (links sorted by name) and forwarding to the target's
port. Each container's main port is published on 127.0.0.1 at ``31000 + i`` (processes of
the *full* plan in start order, so a port never moves between profiles), NATS monitoring at
``32000 + i``, and the proxy API at 38474. The compose file, the proxy's config file and
the state file the docker runtime writes are all derived from this one layout.
"""
from __future__ import annotations

from dataclasses import dataclass

from lab.topology import Plan, ProcessPlan

PROXY_NAME = "toxiproxy"
PROXY_API_PORT = 8474
PROXY_HOST_PORT = 38474
LINK_PORT_BASE = 21000
HOST_PORT_BASE = 31000
MONITOR_HOST_PORT_BASE = 32000
SERVICE_PORT = 8080
READY_FILE = ".ready"      # in a container's /data: lab.container touches it while the process answers
CHECK_SECONDS = 2.0        # how often lab.container asks; the compose health check's interval too
INTERNAL_PORTS = {
    "postgres": {"main": 5432},
    "redis": {"main": 6379},
    "nats": {"main": 4222, "cluster": 6222, "monitor": 8222},
}


def internal_ports(role: str) -> dict[str, int]:
    return dict(INTERNAL_PORTS.get(role, {"main": SERVICE_PORT}))


@dataclass(frozen=True)
class DockerLayout:
    """Ports and addresses of one plan under compose (built from the full plan)."""

    full: Plan

    def containers(self) -> list[ProcessPlan]:
        return [p for p in self.full.processes if p.kind != "proxy"]

    def host_ports(self, name: str) -> dict[str, int]:
        index = [p.name for p in self.containers()].index(name)
        role = self.full.process(name).role
        ports = {"main": HOST_PORT_BASE + index}
        if role == "nats":
            ports["monitor"] = MONITOR_HOST_PORT_BASE + index
        return ports

    def link_port(self, link: str) -> int:
        return LINK_PORT_BASE + sorted(self.full.links).index(link)

    def link_upstream(self, link: str) -> str:
        plan = self.full.links[link]
        target = self.full.process(plan.target)
        source = self.full.process(plan.source)
        ports = internal_ports(target.role)
        # a NATS route goes to the peer's cluster port, everything else to the main port
        port = ports["cluster"] if target.role == "nats" and source.role == "nats" else ports["main"]
        return f"{target.name}:{port}"

    def proxies(self) -> list[dict]:
        """The fault proxy's configuration (Toxiproxy's populate/-config format), every link."""
        return [{"name": name, "listen": f"0.0.0.0:{self.link_port(name)}",
                 "upstream": self.link_upstream(name), "enabled": True}
                for name in sorted(self.full.links)]

    def link_address(self, link: str) -> str:
        """How a container reaches a link: the proxy container and the link's port."""
        return f"{PROXY_NAME}:{self.link_port(link)}"

    def nats_routes(self, name: str) -> list[str]:
        return [self.link_address(link) for link, plan in sorted(self.full.links.items())
                if plan.source == name and self.full.process(plan.target).role == "nats"]


def ready_test() -> str:
    """The compose health check (a shell command, no Python): READY_FILE touched lately."""
    return f"find /data/{READY_FILE} -newermt '-{3 * CHECK_SECONDS:g} seconds' 2>/dev/null | grep -q ."
