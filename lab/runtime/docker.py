"""The docker runtime: the same topology under docker compose, the same state file.

``up`` runs ``docker compose up -d`` on the repository's generated ``docker-compose.yml``
(plus ``docker-compose.offline.yml`` when the real Toxiproxy image is not on this machine,
so the lab's own proxy stands in), waits until every container of the profile reports
healthy, and writes a state file whose endpoints are the ports published on 127.0.0.1 —
so load, chaos and reports run unchanged. Process control acts on containers through the
docker SDK: kill, pause/unpause, stop, start.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from lab.errors import DependencyError, UsageError
from lab.runtime import health
from lab.runtime.base import LabConfig, Progress, Runtime, UpResult
from lab.runtime.docker_compose import TOXIPROXY_IMAGE
from lab.runtime.docker_layout import PROXY_HOST_PORT, PROXY_NAME, DockerLayout
from lab.runtime.local import endpoint_of, ensure_secret, heal_leftovers
from lab.state import (LabState, LinkRecord, ProcessRecord, ProxyRecord, find_state, retire_state,
                       save_state)
from lab.topology import load_topology

PROJECT = "nineslab"
NETWORK = "nineslab"
POLL_SECONDS = 0.5


def repo_root() -> Path:
    """The checkout holding docker-compose.yml (the lab is installed editable from it)."""
    return Path(__file__).resolve().parents[2]


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        return ["docker", "compose"]
    raise DependencyError("the docker runtime needs docker compose: install docker.io and docker-compose")


class DockerRuntime(Runtime):
    """Containers on the ``nineslab`` compose network, ports published on 127.0.0.1."""

    name = "docker"

    def __init__(self, *, root: Path | None = None, startup_timeout: float = 300.0) -> None:
        self.root = root or repo_root()
        self.startup_timeout = startup_timeout
        self._client = None

    @property
    def client(self):
        if self._client is None:
            try:
                import docker
                self._client = docker.from_env()
                self._client.ping()
            except Exception as exc:  # noqa: BLE001 - no engine, no socket, no permission
                raise DependencyError(f"the docker runtime needs a running Docker engine: {exc}") from exc
        return self._client

    # --- compose --------------------------------------------------------------------------

    def _files(self) -> list[str]:
        files = ["-f", str(self.root / "docker-compose.yml")]
        try:
            self.client.images.get(TOXIPROXY_IMAGE)
        except Exception:  # noqa: BLE001 - not pulled here: the lab's own proxy stands in
            files += ["-f", str(self.root / "docker-compose.offline.yml")]
        return files

    def _compose(self, args: list[str], env: dict[str, str], profile: str) -> None:
        argv = compose_command() + ["-p", PROJECT] + self._files()
        if profile == "full":
            argv += ["--profile", "full"]
        done = subprocess.run(argv + args, cwd=self.root, env={**os.environ, **env},
                              capture_output=True, text=True)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            raise DependencyError(f"docker compose {' '.join(args)} failed:\n{tail}")

    def _container(self, name: str):
        found = self.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={PROJECT}", f"com.docker.compose.service={name}"]})
        if not found:
            raise UsageError(f"no container for {name} in the compose project {PROJECT}")
        return found[0]

    # --- up / down ------------------------------------------------------------------------

    def up(self, config: LabConfig, progress: Progress) -> UpResult:
        began = time.monotonic()
        state_dir = config.state_dir.resolve()
        existing = find_state(state_dir)
        if existing is not None and existing.runtime == "docker" and any(self.health(existing).values()):
            return UpResult(existing, started=False, skipped=[], seconds=0.0)
        heal_leftovers(state_dir)
        topology = load_topology(config.topology_file)
        plan, layout = topology.plan(config.profile), DockerLayout(topology.plan("full"))
        (state_dir / "events").mkdir(parents=True, exist_ok=True)
        secret_file = ensure_secret(state_dir / "secret")
        env = {"NINES_PROFILE": config.profile, "NINES_SECRET": secret_file.read_text().strip(),
               "NINES_STATE_DIR": str(state_dir)}
        state = self._state(config, state_dir, plan, layout, secret_file)
        save_state(state)
        progress(f"docker compose up ({config.profile})")
        try:
            self._compose(["up", "-d", "--no-build"], env, config.profile)
            self._wait_healthy(state, progress)
        except BaseException:
            progress("start failed: bringing the containers down")
            self.down(state, progress)
            raise
        for record in state.processes.values():
            record.container = self._container(record.name).name
        save_state(state)
        return UpResult(state, started=True, skipped=[], seconds=time.monotonic() - began)

    def _state(self, config: LabConfig, state_dir: Path, plan, layout: DockerLayout, secret_file: Path) -> LabState:
        processes, endpoints = {}, {}
        for p in plan.processes:
            if p.kind == "proxy":
                continue
            ports = layout.host_ports(p.name)
            processes[p.name] = ProcessRecord(name=p.name, role=p.role, region=p.region, kind=p.kind,
                                              ports=ports, depends_on=list(p.depends_on), status="starting")
            endpoints[p.name] = endpoint_of(p.role, ports)
        processes[PROXY_NAME] = ProcessRecord(name=PROXY_NAME, role="proxy", kind="proxy",
                                              ports={"main": PROXY_HOST_PORT}, status="starting")
        proxy_url = f"http://127.0.0.1:{PROXY_HOST_PORT}"
        endpoints[PROXY_NAME] = proxy_url
        links = {}
        for entry in layout.proxies():
            link = plan.links.get(entry["name"])
            if link is None:       # a link of the full profile only
                continue
            links[entry["name"]] = LinkRecord.model_validate(
                {"listen": entry["listen"], "upstream": entry["upstream"], "from": link.source,
                 "to": link.target, "regions": list(link.regions)})
        return LabState(runtime="docker", profile=config.profile, state_dir=str(state_dir),
                        created_at=time.time(), secret_file=str(secret_file), processes=processes,
                        endpoints=endpoints, links=links, network=NETWORK,
                        proxy=ProxyRecord(api=proxy_url, kind="nineslab"))

    def _wait_healthy(self, state: LabState, progress: Progress) -> None:
        deadline = time.monotonic() + self.startup_timeout
        waiting = set(state.processes)
        while waiting:
            for name in sorted(waiting):
                container = self._container(name)
                status = container.attrs.get("State", {})
                if status.get("Status") == "exited":
                    logs = container.logs(tail=8).decode(errors="replace")
                    raise DependencyError(f"container {name} exited while starting:\n{logs}")
                if (status.get("Health") or {}).get("Status") == "healthy":
                    waiting.discard(name)
                    state.processes[name].status = "running"
                    progress(f"{name} healthy")
            if time.monotonic() > deadline:
                raise DependencyError(f"not healthy after {self.startup_timeout:.0f} s: {', '.join(sorted(waiting))}")
            time.sleep(POLL_SECONDS)

    def down(self, state: LabState, progress: Progress) -> list[str]:
        heal_leftovers(Path(state.state_dir))
        names = []
        for name in state.processes:
            try:
                if self._container(name).status in ("running", "paused"):
                    names.append(name)
            except UsageError:
                pass
        self._compose(["down", "-v", "--remove-orphans", "-t", "10"], {}, state.profile)
        for name in names:
            progress(f"stopped {name}")
        retire_state(state)
        return names

    def health(self, state: LabState) -> dict[str, bool]:
        result = {}
        for name, record in state.processes.items():
            try:
                running = self._container(name).status == "running"
            except (UsageError, DependencyError):
                running = False
            result[name] = running and health.answers(record)
        return result

    # --- process control ------------------------------------------------------------------

    def kill(self, state: LabState, name: str) -> None:
        self._container(state.process(name).name).kill()
        state.process(name).status = "killed"

    def pause(self, state: LabState, name: str) -> None:
        self._container(name).pause()
        state.process(name).status = "paused"

    def resume(self, state: LabState, name: str) -> None:
        self._container(name).unpause()
        state.process(name).status = "running"

    def stop(self, state: LabState, name: str) -> None:
        self._container(name).stop(timeout=10)
        state.process(name).status = "stopped"

    def start(self, state: LabState, name: str) -> None:
        record = state.process(name)
        self._container(name).start()
        deadline = time.monotonic() + self.startup_timeout
        while not health.answers(record):
            if time.monotonic() > deadline:
                raise DependencyError(f"{name} was not ready after {self.startup_timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        record.status = "running"
