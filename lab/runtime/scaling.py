"""Adding and removing replicas of a running local lab: the runtime side of auto-scaling.

``Scaler.add`` starts one more replica of a replicated service in a region (``chat-us-east-3``):
ports, its links through the fault proxy (so every fault still reaches it), its config, the
process — recorded in the state file under the state lock *before* it is waited on, so
``nines down`` stops it even when whoever asked is killed half way — and, once it answers,
its entry in the discovery file that routers watch. Retiring is two steps, because routers
must stop sending users to a replica before it stops: ``drain`` takes it out of discovery,
``remove`` stops it and deletes its record, endpoint and links. ``system.autoscaler``
decides when; this module only does::

    scaler = Scaler(state_dir, topology_file=None)
    record = scaler.add("chat-{region}-{n}", "us-east")       # waits until it is ready
    scaler.drain(record.name); ...; scaler.remove(record.name)
"""
from __future__ import annotations

import itertools
import re
import sys
import threading
from dataclasses import replace
from pathlib import Path

from lab.errors import DependencyError, LabError
from lab.runtime import discovery
from lab.runtime.local import HOST, LocalRuntime, endpoint_of, write_service_config
from lab.servers.base import ManagedProcess, ServerSpec, free_port
from lab.state import LabState, LinkRecord, ProcessRecord, load_state, locked, save_state
from lab.topology import PROXY, ProcessPlan, _fill, link_name, load_topology


class Scaler:
    """Replica changes on the lab in ``state_dir`` (local runtime)."""

    def __init__(self, state_dir: Path | str, *, topology_file: Path | str | None = None,
                 runtime: LocalRuntime | None = None, abort: threading.Event | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.runtime = runtime or LocalRuntime()
        self.abort = abort or threading.Event()
        self.plan = load_topology(topology_file).plan(load_state(self.state_dir).profile)

    def replicas(self, template: str, region: str, state: LabState | None = None) -> list[ProcessRecord]:
        """The replicas of ``template`` in ``region`` that serve (not draining), in number order."""
        state = state or load_state(self.state_dir)
        pattern = re.compile(re.escape(_fill(template, region)).replace(re.escape("{n}"), r"(\d+)"))
        numbered = [(int(m.group(1)), r) for r in state.processes.values()
                    if (m := pattern.fullmatch(r.name)) and not r.draining]
        return [r for _, r in sorted(numbered, key=lambda nr: nr[0])]

    def _model(self, template: str, region: str) -> ProcessPlan:
        for p in self.plan.processes:
            if p.template == template and p.region == region:
                return p
        raise LabError(f"the topology has no {template} in region {region!r}")

    def add(self, template: str, region: str) -> ProcessRecord:
        """Start one more replica and wait until it answers; then publish it to discovery."""
        model = self._model(template, region)
        with locked(self.state_dir):
            state = load_state(self.state_dir)
            name = next(_fill(template, region, n) for n in itertools.count(1)
                        if _fill(template, region, n) not in state.processes)
            proc = replace(model, name=name)
            port = free_port(HOST)
            targets = [t for dep in proc.deps for t in dep.targets]
            for target in targets:
                upstream = f"{HOST}:{state.process(target).ports['main']}"
                listen = f"{HOST}:{free_port(HOST)}" if state.proxy is not None else upstream
                state.links[link_name(name, target)] = LinkRecord(
                    listen=listen, upstream=upstream, source=name, target=target,
                    regions=list(dict.fromkeys(r for r in (region, state.process(target).region) if r)))
            state.endpoints[name] = endpoint_of(proc.role, {"main": port})
            save_state(state)
        self.runtime._ensure_links(state)
        config = write_service_config(proc, state, self.plan, port)
        log_file = self.state_dir / "logs" / f"{name}.log"
        spec = ServerSpec(name=name, role=proc.role, log_file=log_file, ports={"main": port},
                          argv=[sys.executable, "-m", f"system.{proc.role}", "--config", str(config)])
        record = ProcessRecord(name=name, role=proc.role, region=region, kind="service", ports=spec.ports,
                               log_file=str(log_file), config_file=str(config), argv=spec.argv,
                               depends_on=[PROXY, *targets] if state.proxy else targets, status="starting")
        with locked(self.state_dir):
            process = ManagedProcess(spec)
            process.start()
            record.pid, record.create_time = process.pid, process.create_time
            state = load_state(self.state_dir)
            state.processes[name] = record
            save_state(state)
        try:
            self.runtime._wait_ready(record, alive=process.alive, abort=self.abort)
        except DependencyError:            # it exited or never answered: leave nothing behind
            self.remove(name)
            raise
        record.status = "running"
        with locked(self.state_dir):
            state = load_state(self.state_dir)
            state.processes[name] = record
            save_state(state)
            discovery.write(self.state_dir, proc.role, discovery.of_state(state, proc.role))
        return record

    def drain(self, name: str) -> None:
        """Take a replica out of discovery: routers stop sending users to it; it keeps running."""
        with locked(self.state_dir):
            state = load_state(self.state_dir)
            record = state.process(name)
            record.draining = True
            save_state(state)
            discovery.write(self.state_dir, record.role, discovery.of_state(state, record.role))

    def remove(self, name: str) -> None:
        """Stop a (drained) replica; its clients reconnect elsewhere. Forget its record and links."""
        self.runtime._stop_record(load_state(self.state_dir).process(name))
        with locked(self.state_dir):
            state = load_state(self.state_dir)
            state.processes.pop(name, None)
            state.endpoints.pop(name, None)
            for link in [n for n, link in state.links.items() if link.source == name]:
                del state.links[link]
            save_state(state)
