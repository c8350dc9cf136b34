"""Container faults for the docker runtime: kill, pause, disconnect from the lab network.

The docker runtime writes the same state file; each process record names its container in
``container`` (or the container is named like the process). The docker SDK is imported only
when a docker fault is planned, so the local runtime never needs a Docker engine.

=================  ============================  =========================
kind               apply                         rollback
=================  ============================  =========================
docker.kill        container.kill()              container.start()
docker.pause       container.pause()             container.unpause()
docker.disconnect  network.disconnect(container) network.connect(container)
=================  ============================  =========================
"""
from __future__ import annotations

from typing import Any

from chaos.faults.base import AppliedFault, match_names, new_uid
from lab.errors import DependencyError, UsageError


class DockerDriver:
    prefix = "docker"

    def __init__(self, state: Any, client: Any = None) -> None:
        self.state = state
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                import docker
                self._client = docker.from_env()
            except Exception as exc:  # noqa: BLE001 - any failure means no engine to talk to
                raise DependencyError(f"docker faults need a running Docker engine: {exc}") from exc
        return self._client

    def _container_of(self, name: str) -> str:
        proc = self.state.processes.get(name)
        container = (proc.get("container") if isinstance(proc, dict) else getattr(proc, "container", None)) if proc else None
        return container or name

    def plan(self, fault: Any, *, experiment: str = "", path: str | None = None,
             line: int | None = None) -> AppliedFault:
        if getattr(self.state, "runtime", "local") != "docker":
            raise UsageError(f"{fault.kind} needs the docker runtime, the lab runs {self.state.runtime}; "
                             f"use the process.* equivalent")
        targets = match_names(fault.targets, sorted(self.state.processes), what="container", path=path, line=line)
        network = getattr(self.state, "network", None) or "nineslab"
        return AppliedFault(uid=new_uid(), kind=fault.kind, targets=targets, fault_id=fault.id or "",
                            experiment=experiment, params={"network": network})

    def apply(self, applied: AppliedFault) -> None:
        for name in applied.targets:
            container = self.client.containers.get(self._container_of(name))
            if applied.kind == "docker.kill":
                container.kill()
            elif applied.kind == "docker.pause":
                container.pause()
            elif applied.kind == "docker.disconnect":
                self.client.networks.get(applied.params["network"]).disconnect(container)

    def rollback(self, applied: AppliedFault) -> None:
        for name in applied.targets:
            container = self.client.containers.get(self._container_of(name))
            container.reload()
            if applied.kind == "docker.kill" and container.status != "running":
                container.start()
            elif applied.kind == "docker.pause" and container.status == "paused":
                container.unpause()
            elif applied.kind == "docker.disconnect":
                try:
                    self.client.networks.get(applied.params["network"]).connect(container)
                except Exception:  # noqa: BLE001 - already connected
                    pass
