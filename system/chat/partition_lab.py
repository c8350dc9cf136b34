"""A chat lab whose NATS routes pass the fault proxy, so a region can be partitioned.

``ChatLab`` (devlab.py) routes its NATS nodes to each other directly; here each node is one
region's (``nats-<region>``), its explicit routes are the proxy links ``nats-A>nats-B`` exactly
as the local runtime wires them, and ``partition(region)`` / ``heal()`` cut and restore every
link that touches a region. ``extra_nats_regions`` add nodes without chat servers (a 3-node
cluster for two chat regions). Everything runs in the caller's ``ServerGroup``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import httpx

from chaos.proxy.facade import FaultProxy
from lab.servers import nats
from lab.servers.base import ManagedProcess, ServerSpec, free_port, wait_until
from lab.servers.group import ServerGroup
from lab.servers.postgres import create_database
from system.chat.devlab import ChatLab, Region


@dataclass
class PartitionLab:
    group: ServerGroup
    regions: list[str]
    extra_nats_regions: list[str] = field(default_factory=list)
    links: dict[str, dict] = field(default_factory=dict)
    proxy: FaultProxy | None = None
    chat: ChatLab | None = None

    def start(self) -> ChatLab:
        root = self.group.root
        api_port = free_port()
        spec = ServerSpec(name="proxy", role="proxy", log_file=root / "proxy.log", ports={"main": api_port},
                          argv=[sys.executable, "-m", "chaos.proxy", "serve", "--host", "127.0.0.1",
                                "--port", str(api_port)])
        proc = self.group._start(ManagedProcess(spec))
        api = f"http://127.0.0.1:{api_port}"
        wait_until(lambda: _answers(api + "/version"), timeout=30, what="fault proxy", alive=proc.alive)
        self.proxy = FaultProxy(api)

        names = [f"nats-{r}" for r in self.regions + self.extra_nats_regions]
        ports = {n: (free_port(), free_port(), free_port()) for n in names}       # client, cluster, monitor
        self.links = {f"{a}>{b}": {"listen": f"127.0.0.1:{free_port()}", "upstream": f"127.0.0.1:{ports[b][1]}",
                                   "regions": [a[5:], b[5:]]}
                      for a in names for b in names if a != b}
        self.proxy.ensure_links(self.links)
        nodes = {}
        for n in names:
            routes = [link["listen"] for name, link in self.links.items() if name.startswith(n + ">")]
            client, cluster, monitor = ports[n]
            nodes[n] = self.group._start(ManagedProcess(nats.spec(
                n, root / n, client, cluster, monitor, routes, root / f"{n}.log", cluster_name=f"lab-{root.name}")))
        for n, proc in nodes.items():
            wait_until(lambda: nats.ready(ports[n][2]), timeout=60, what=n, alive=proc.alive)

        lab = self.chat = ChatLab(self.group, self.regions)
        for region in self.regions:
            pg = self.group.postgres(f"pg-{region}")
            create_database(pg.port, "chat")
            lab.infra[region] = Region(region, pg, self.group.redis(f"redis-{region}"),
                                       nats.url(ports[f"nats-{region}"][0]))
        return lab

    def partition(self, region: str) -> list[str]:
        return self.proxy.cut_region(region, self.links)

    def heal(self) -> None:
        for name in self.links:
            self.proxy.restore(name)

    def close(self) -> None:
        if self.proxy is not None:
            self.proxy.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
