"""Container faults for the docker runtime, through the docker SDK.

The docker runtime writes the same state file; each process record names its container in
``container`` (or the container is named like the process). Targets are resolved like the
process driver's: names, globs or ``region:R`` (a region partition at the container-network
level is ``docker.disconnect`` of ``region:R``). The docker SDK is imported only when a
docker fault is applied, so the local runtime never needs a Docker engine.

=================  ==============================  ===================================
kind               apply                           rollback
=================  ==============================  ===================================
docker.kill        container.kill()                start, if not running
docker.pause       container.pause()               unpause, if paused
docker.stop        container.stop() (graceful)     start, if not running
docker.restart     container.restart() (deploy)    start, if it did not come back
docker.disconnect  network.disconnect(container)   connect with its compose alias, if
                                                   not connected
=================  ==============================  ===================================

Rollback is idempotent and tolerates a half-applied fault: every target is brought back,
the first error is raised after all of them were tried. Engine errors become one sentence
(``LabError``) naming the fault, the container and what the engine said.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from chaos.faults.base import AppliedFault
from chaos.faults.process import ProcessDriver, _start_order
from lab.errors import DependencyError, LabError, UsageError

STOP_TIMEOUT = 10          # seconds docker waits after SIGTERM before SIGKILL (stop, restart)
KINDS = ("docker.kill", "docker.pause", "docker.stop", "docker.restart", "docker.disconnect")


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
        if fault.kind not in KINDS:
            raise UsageError(f"the docker driver cannot apply {fault.kind}; it knows {', '.join(KINDS)}")
        # the same targets as the process driver: names, globs, region:R; never the fault proxy
        applied = ProcessDriver(self.state, controller=None).plan(fault, experiment=experiment, path=path, line=line)
        applied.params["network"] = getattr(self.state, "network", None) or "nineslab"
        return applied

    def apply(self, applied: AppliedFault) -> None:
        for name in applied.targets:
            with _engine_errors(applied.kind, name):
                container = self.client.containers.get(self._container_of(name))
                if applied.kind == "docker.kill":
                    container.kill()
                elif applied.kind == "docker.pause":
                    container.pause()
                elif applied.kind == "docker.stop":
                    container.stop(timeout=STOP_TIMEOUT)
                elif applied.kind == "docker.restart":
                    container.restart(timeout=STOP_TIMEOUT)
                elif applied.kind == "docker.disconnect":
                    self.client.networks.get(applied.params["network"]).disconnect(container)
                else:
                    raise UsageError(f"the docker driver cannot apply {applied.kind}")

    def rollback(self, applied: AppliedFault) -> None:
        errors: list[Exception] = []
        # a region comes back in dependency order: infrastructure first, as the process driver does
        for name in _start_order(self.state, applied.targets):
            try:
                with _engine_errors(f"undoing {applied.kind}", name):
                    self._undo(applied, self.client.containers.get(self._container_of(name)))
            except LabError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def _undo(self, applied: AppliedFault, container: Any) -> None:
        container.reload()
        if applied.kind == "docker.pause":
            if container.status == "paused":
                container.unpause()
        elif applied.kind == "docker.disconnect":
            network = applied.params["network"]
            if network not in container.attrs["NetworkSettings"]["Networks"]:
                # compose names a service by its alias on the network: give it back, or DNS loses it
                service = container.labels.get("com.docker.compose.service")
                self.client.networks.get(network).connect(container, aliases=[service] if service else None)
        elif container.status != "running":
            container.start()


@contextmanager
def _engine_errors(doing: str, name: str) -> Iterator[None]:
    """Turn what the docker SDK raises into one sentence naming the fault and the container."""
    import docker.errors
    try:
        yield
    except docker.errors.NotFound as exc:
        raise LabError(f"{doing} {name}: no such container or network (is the docker lab up?)") from exc
    except docker.errors.DockerException as exc:
        said = getattr(exc, "explanation", None) or str(exc)
        raise LabError(f"{doing} {name}: the docker engine said: {said}") from exc
