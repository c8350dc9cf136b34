"""The local runtime: the whole topology as processes on 127.0.0.1, on free ports.

``up`` starts the fault proxy and its links, PostgreSQL, Redis and a NATS JetStream cluster
whose routes pass the proxy, creates the services' databases, then starts each service
(``python -m system.<role> --config FILE``). Each process starts as soon as everything it
depends on is ready, in its own thread, so independent parts (six initdb runs, three NATS
nodes) overlap. The state file is written as each process starts, so a ``nines up`` that
fails, is interrupted (Ctrl-C, SIGTERM) or is killed outright leaves a file ``down`` can
use; on failure or interrupt ``up`` itself stops what it started before re-raising.
An autoscaler (``system.autoscaler``, when the topology has one) starts last, once ``up`` is
done writing the state file; ``down`` stops it first, then everything it added.

PostgreSQL data is initialised once and reused; Redis keeps nothing, and JetStream streams
start empty on each ``up`` unless ``keep_streams`` (a cluster recovering old raft state waits
out an election timeout, ~5 s) — process control restarts keep a node's streams.

Directories under the state dir: ``data/<name>``, ``logs/<name>.log``
(kept after ``down``), ``events/<name>.jsonl``, ``config/<name>.json``, and ``secret``.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

from lab.errors import DependencyError, LabError, NinesError, UsageError
from lab.runtime import discovery, health
from lab.runtime.base import LabConfig, Progress, Runtime, UpResult
from lab.runtime.order import stop_levels
from lab.servers import nats, postgres, redis
from lab.servers.base import ManagedProcess, ServerSpec, free_port, process_matches, stop_pid
from lab.state import (LabState, LinkRecord, ProcessRecord, ProxyRecord, find_state, retire_state,
                       save_state)
from lab.topology import AUTOSCALER, PROXY, Plan, ProcessPlan, load_topology

HOST = "127.0.0.1"
POLL_SECONDS = 0.05


def heal_leftovers(state_dir: Path) -> None:
    """Let the chaos engine roll back faults a crashed run left behind, when it is installed."""
    try:
        recovery = importlib.import_module("chaos.recovery")
    except ModuleNotFoundError as exc:
        if exc.name in ("chaos", "chaos.recovery"):
            return
        raise
    recovery.heal_leftovers(state_dir)


def service_available(role: str) -> bool:
    """True when ``python -m system.<role>`` can run (the service has been built)."""
    try:
        return importlib.util.find_spec(f"system.{role}.__main__") is not None
    except ModuleNotFoundError:
        return False


def fault_proxy_module():
    """``chaos.proxy`` (launch + facade), or None while it is not installed."""
    try:
        return importlib.import_module("chaos.proxy")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("chaos"):
            return None
        raise


def ensure_secret(path: Path) -> Path:
    """The lab's HMAC key for bearer tokens: made once (64 hex characters, mode 0600), then reused."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path


def dependency_url(role: str, address: str, database: str | None) -> str:
    if role == "postgres":
        return f"postgresql://postgres@{address}/{database or 'postgres'}"
    if role == "redis":
        return f"redis://{address}/0"
    if role == "nats":
        return f"nats://{address}"
    return f"http://{address}"


def endpoint_of(role: str, ports: dict[str, int]) -> str:
    return dependency_url(role, f"{HOST}:{ports['main']}", None)


def spec_of(record: ProcessRecord) -> ServerSpec:
    """How to run a recorded process again: same argv, ports, data, user and log."""
    return ServerSpec(name=record.name, role=record.role, argv=list(record.argv),
                      log_file=Path(record.log_file or os.devnull), ports=dict(record.ports),
                      data_dir=Path(record.data_dir) if record.data_dir else None,
                      user=record.user, stop_signal=record.stop_signal)


def write_service_config(p: ProcessPlan, state: LabState, plan: Plan, port: int,
                         extra: dict | None = None) -> Path:
    """Write ``<state_dir>/config/<name>.json`` (contracts §5) for service ``p``, whose dependency
    links are already in ``state``; routers also get the discovery file of their peers."""
    state_dir = Path(state.state_dir)
    deps: dict[str, object] = {}
    for dep in p.deps:
        urls = []
        for target in dep.targets:
            address = state.links[f"{p.name}>{target}"].listen
            urls.append(dependency_url(plan.process(target).role, address, dep.database))
        deps[dep.key] = urls if dep.many else urls[0]
    peers = {name: {"url": state.endpoints[name], "region": plan.process(name).region}
             for name in p.peers if name in state.endpoints}
    config = {
        "name": p.name, "role": p.role, "region": p.region, "host": HOST, "port": port,
        "regions": list(plan.regions), "secret_file": state.secret_file,
        "log_file": str(state_dir / "logs" / f"{p.name}.log"), "deps": deps, "peers": peers,
        "settings": dict(p.settings), "events_file": str(state_dir / "events" / f"{p.name}.jsonl"),
        **(extra or {}),
    }
    if p.peers:
        config["settings"]["discovery_file"] = str(discovery.path(state_dir, plan.process(p.peers[0]).role))
    path = state_dir / "config" / f"{p.name}.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


@contextlib.contextmanager
def interrupts_deferred():
    """Ignore Ctrl-C and SIGTERM while cleaning up, so a second Ctrl-C cannot leave orphans."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class LocalRuntime(Runtime):
    """Processes on 127.0.0.1."""

    name = "local"

    def __init__(self, *, clock: Callable[[], float] = time.time, stop_grace: float = 10.0,
                 startup_timeout: float = 60.0) -> None:
        self.clock = clock
        self.stop_grace = stop_grace
        self.startup_timeout = startup_timeout
        self._lock = threading.Lock()

    # --- up / down -------------------------------------------------------------------

    def up(self, config: LabConfig, progress: Progress) -> UpResult:
        began = time.monotonic()
        state_dir = config.state_dir.resolve()
        existing = find_state(state_dir)
        if existing is not None and any(health.alive(r) for r in existing.processes.values()):
            return UpResult(existing, started=False, skipped=[], seconds=0.0)
        topology = load_topology(config.topology_file)
        plan = topology.plan(config.profile)
        if existing is not None and existing.runtime != self.name:
            raise UsageError(f"{state_dir} holds a lab of the {existing.runtime} runtime; "
                             "run `nines down` first or use another --state-dir")
        if existing is not None:       # a lab that died or a crashed up: clear what is left
            self.down(existing, progress)
        heal_leftovers(state_dir)
        launch = _Launch(self, config, state_dir, plan, progress)
        launch.run()
        self._start_backups(launch.state, topology, progress)
        return UpResult(launch.state, started=True, skipped=launch.skipped,
                        seconds=time.monotonic() - began)

    def _start_backups(self, state: LabState, topology, progress: Progress) -> None:
        """The backup scheduler of the regional stores (lab/dr, docs/dr.md), once the lab is up."""
        from lab.dr.scheduler import start_with_lab
        try:
            start_with_lab(state, topology.spec.backups, progress)
        except BaseException:
            with interrupts_deferred():
                self.down(find_state(state.state_dir) or state, progress)
            raise

    def down(self, state: LabState, progress: Progress) -> list[str]:
        heal_leftovers(Path(state.state_dir))
        stopped: list[str] = []
        with interrupts_deferred():
            # an autoscaler adds processes to the state file: stop it first, then stop what it added too
            for record in state.processes_by(role=AUTOSCALER):
                if self._stop_record(record):
                    stopped.append(record.name)
                    progress(f"stopped {record.name}")
            latest = find_state(state.state_dir)
            for name, record in (latest.processes.items() if latest is not None else ()):
                state.processes.setdefault(name, record)
            for group in stop_levels({n: r.depends_on for n, r in state.processes.items()}):
                records = [state.processes[n] for n in group if state.processes[n].pid is not None]
                if not records:
                    continue
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(records)) as pool:
                    for record, was_running in zip(records, pool.map(self._stop_record, records)):
                        if was_running:
                            stopped.append(record.name)
                            progress(f"stopped {record.name}")
            retire_state(state)
        return stopped

    def _stop_record(self, record: ProcessRecord) -> bool:
        if record.pid is None:
            return False
        return stop_pid(record.pid, record.create_time, stop_signal=record.stop_signal, grace=self.stop_grace)

    def health(self, state: LabState) -> dict[str, bool]:
        return health.check_all(state)

    # --- process control ---------------------------------------------------------------

    def _family(self, record: ProcessRecord) -> list[psutil.Process]:
        proc = process_matches(record.pid, record.create_time) if record.pid else None
        if proc is None:
            return []
        try:
            return [proc] + proc.children(recursive=True)
        except psutil.Error:
            return [proc]

    def _signal_family(self, record: ProcessRecord, sig: int) -> list[psutil.Process]:
        family = self._family(record)
        if not family:
            raise UsageError(f"{record.name} is not running (status {record.status}); start it first")
        for proc in family:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        return family

    def kill(self, state: LabState, name: str) -> None:
        """SIGKILL the process and its children at once, as a crash would."""
        record = state.process(name)
        family = self._signal_family(record, signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
        record.status = "killed"

    def pause(self, state: LabState, name: str) -> None:
        """SIGSTOP the process and its children: alive, holding its sockets, answering nothing."""
        record = state.process(name)
        self._signal_family(record, signal.SIGSTOP)
        record.status = "paused"

    def resume(self, state: LabState, name: str) -> None:
        record = state.process(name)
        self._signal_family(record, signal.SIGCONT)
        record.status = "running"

    def stop(self, state: LabState, name: str) -> None:
        record = state.process(name)
        self._stop_record(record)
        record.status = "stopped"

    def start(self, state: LabState, name: str) -> None:
        record = state.process(name)
        if health.alive(record):
            raise UsageError(f"{name} is already running (pid {record.pid}); stop or kill it first")
        self._start_record(record)
        self._wait_ready(record, alive=lambda: health.alive(record), abort=None)
        if record.role == PROXY and state.proxy is not None:
            self._ensure_links(state)
        record.status = "running"

    def _start_record(self, record: ProcessRecord) -> ManagedProcess:
        process = ManagedProcess(spec_of(record))
        process.start()
        record.pid, record.create_time, record.status = process.pid, process.create_time, "starting"
        return process

    def _wait_ready(self, record: ProcessRecord, *, alive: Callable[[], bool],
                    abort: threading.Event | None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not health.answers(record):
            if abort is not None and abort.is_set():
                raise _Aborted()
            if not alive():
                raise DependencyError(f"{record.name} exited while starting; see its log {record.log_file}"
                                      f"{_tail(record.log_file)}")
            if time.monotonic() > deadline:
                raise DependencyError(f"{record.name} was not ready after {self.startup_timeout:.0f} s; "
                                      f"see its log {record.log_file}")
            time.sleep(POLL_SECONDS)

    def _ensure_links(self, state: LabState) -> None:
        module = fault_proxy_module()
        if module is None or state.proxy is None:
            return
        with module.FaultProxy(state.proxy.api) as proxy:
            proxy.ensure_links(state.links_dict())


class _Aborted(Exception):
    """Another process of the same ``up`` failed, or the user interrupted it."""


def _tail(log_file: str | None, lines: int = 3) -> str:
    if not log_file:
        return ""
    try:
        last = [line for line in Path(log_file).read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except OSError:
        return ""
    return (": " + " | ".join(last)) if last else ""


class _Launch:
    """One ``nines up``: ports, directories, the state file and one starter thread a process."""

    def __init__(self, runtime: LocalRuntime, config: LabConfig, state_dir: Path, plan: Plan,
                 progress: Progress) -> None:
        self.runtime, self.config, self.plan, self.progress = runtime, config, plan, progress
        self.state_dir = state_dir
        for sub in ("data", "logs", "events", "config"):
            (state_dir / sub).mkdir(parents=True, exist_ok=True)
        self.secret_file = ensure_secret(state_dir / "secret")
        self.proxy_module = fault_proxy_module()
        self.external_proxy = config.proxy_url
        self.skipped = [p.name for p in plan.by_kind("service") if not service_available(p.role)]
        for name in self.skipped:
            progress(f"skipping {name}: system.{plan.process(name).role} has no __main__ yet")
        self.wanted = [p for p in plan.processes if p.name not in self.skipped
                       and not (p.kind == "proxy" and (self.external_proxy or self.proxy_module is None))]
        # autoscalers start once everything else is up and the state file has its last writer
        self.deferred = [p for p in plan.autoscalers if service_available(p.role)]
        self.ports = self._allocate_ports()
        self.state = self._initial_state()
        self.ready = {p.name: threading.Event() for p in (*self.wanted, *self.deferred)}
        self.abort = threading.Event()
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()

    # --- planning (no processes yet) ------------------------------------------------

    def _allocate_ports(self) -> dict[str, dict[str, int]]:
        taken: set[int] = set()

        def port() -> int:
            while True:
                p = free_port(HOST)
                if p not in taken:
                    taken.add(p)
                    return p
        ports = {}
        for p in (*self.plan.processes, *self.plan.autoscalers):
            if p.role == "nats":
                ports[p.name] = {"main": port(), "cluster": port(), "monitor": port()}
            else:
                ports[p.name] = {"main": port()}
        if self.proxy_module is not None or self.external_proxy:
            for name in self.plan.links:
                ports[name] = {"main": port()}
        return ports

    def _initial_state(self) -> LabState:
        proxy = None
        if self.external_proxy:
            proxy = ProxyRecord(api=self.external_proxy, kind="toxiproxy", managed=False)
        elif self.proxy_module is not None:
            proxy = ProxyRecord(api=f"http://{HOST}:{self.ports[PROXY]['main']}",
                                kind=self.proxy_module.launch.server_kind(), managed=True)
        links = {}
        for name, link in self.plan.links.items():
            target = self.plan.process(link.target)
            upstream_port = self.ports[target.name]["cluster" if self.plan.process(link.source).role == "nats"
                                                    and target.role == "nats" else "main"]
            upstream = f"{HOST}:{upstream_port}"
            listen = f"{HOST}:{self.ports[name]['main']}" if proxy else upstream
            links[name] = LinkRecord(listen=listen, upstream=upstream, source=link.source,
                                     target=link.target, regions=list(link.regions))
        endpoints = {p.name: endpoint_of(p.role, self.ports[p.name])
                     for p in (*self.wanted, *self.deferred) if p.kind != "proxy"}
        state = LabState(runtime="local", profile=self.plan.profile, state_dir=str(self.state_dir),
                         created_at=self.runtime.clock(), secret_file=str(self.secret_file),
                         endpoints=endpoints, proxy=proxy, links=links)
        save_state(state)
        for role in {self.plan.process(peer).role for p in self.wanted for peer in p.peers}:
            discovery.write(self.state_dir, role, [
                discovery.Member(p.name, p.region, endpoints[p.name])
                for p in self.wanted if p.role == role and p.name in endpoints])
        return state

    def _service_config(self, p: ProcessPlan) -> Path:
        extra = {}
        if p.role == AUTOSCALER:       # it starts and stops replicas through this runtime
            extra = {"state_dir": str(self.state_dir),
                     "topology_file": str(Path(self.config.topology_file).resolve()) if self.config.topology_file
                     else None}
        return write_service_config(p, self.state, self.plan, self.ports[p.name]["main"], extra)

    def _log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def _spec(self, p: ProcessPlan) -> tuple[ServerSpec, Path | None]:
        ports, data_dir, log = self.ports[p.name], self.state_dir / "data" / p.name, self._log(p.name)
        if p.role == "postgres":
            if postgres.ensure_initialised(data_dir):
                self.progress(f"initialised {p.name}")
            return postgres.spec(p.name, data_dir, ports["main"], log, region=p.region), None
        if p.role == "redis":
            return redis.spec(p.name, data_dir, ports["main"], log), None
        if p.role == "nats":
            if not self.config.keep_streams:    # a recovering cluster waits out a raft election timeout
                shutil.rmtree(data_dir / "jetstream", ignore_errors=True)
            routes = [link.listen for link in self.state.links.values()
                      if link.source == p.name and self.plan.process(link.target).role == "nats"]
            return nats.spec(p.name, data_dir, ports["main"], ports["cluster"], ports["monitor"], routes, log), None
        if p.kind == "proxy":
            argv = self.proxy_module.launch.server_command(HOST, ports["main"])
            return ServerSpec(name=p.name, role=p.role, argv=argv, log_file=log, ports=ports), None
        config = self._service_config(p)
        argv = [sys.executable, "-m", f"system.{p.role}", "--config", str(config)]
        return ServerSpec(name=p.name, role=p.role, argv=argv, log_file=log, ports=ports), config

    # --- starting -----------------------------------------------------------------------

    def _save(self) -> None:
        with self.lock:
            save_state(self.state)

    def _bring_up(self, p: ProcessPlan) -> None:
        try:
            # a router need not wait for the servers it health-checks: it finds them as they come
            for dep in (d for d in p.depends_on if d not in p.peers):
                event = self.ready.get(dep)
                while event is not None and not event.wait(POLL_SECONDS):
                    if self.abort.is_set():
                        return
            if self.abort.is_set():
                return
            spec, config_file = self._spec(p)
            record = ProcessRecord(name=p.name, role=p.role, region=p.region, kind=p.kind, ports=spec.ports,
                                   data_dir=str(spec.data_dir.resolve()) if spec.data_dir else None,
                                   log_file=str(spec.log_file), config_file=str(config_file) if config_file else None,
                                   argv=spec.argv, user=spec.user, stop_signal=int(spec.stop_signal),
                                   depends_on=[d for d in p.depends_on if d in self.ready], status="starting")
            if self.abort.is_set():
                return
            began = time.monotonic()
            with self.lock:
                process = ManagedProcess(spec)
                process.start()
                record.pid, record.create_time = process.pid, process.create_time
                self.state.processes[p.name] = record
                save_state(self.state)
            self.runtime._wait_ready(record, alive=process.alive, abort=self.abort)
            if p.kind == "proxy":
                self.runtime._ensure_links(self.state)
            if p.role == "postgres":
                for database in self.plan.databases().get(p.name, []):
                    postgres.create_database(record.ports["main"], database)
            record.status = "running"
            self._save()
            self.progress(f"ready {p.name} ({time.monotonic() - began:.1f} s)")
            self.ready[p.name].set()
        except _Aborted:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises
            self.errors.append(exc)
            self.abort.set()

    def run(self) -> None:
        if self.external_proxy and self.proxy_module is not None:
            # a proxy the lab does not start: it must answer now, and gets its links first
            with self.proxy_module.FaultProxy(self.external_proxy) as proxy:
                if not proxy.healthy():
                    raise DependencyError(f"the fault proxy at TOXIPROXY_URL={self.external_proxy} does not "
                                          "answer; start it or unset TOXIPROXY_URL")
            self.runtime._ensure_links(self.state)
            self.progress(f"links ready on {self.external_proxy}")
        threads = [threading.Thread(target=self._bring_up, args=(p,), name=f"up-{p.name}", daemon=True)
                   for p in self.wanted]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)     # a timed join lets Ctrl-C reach this thread
            if self.errors:
                raise self.errors[0]
            order = [p.name for p in (*self.plan.processes, *self.deferred)]
            with self.lock:   # the file lists processes in plan order, not in the order they became ready
                self.state.processes = dict(sorted(self.state.processes.items(), key=lambda kv: order.index(kv[0])))
                save_state(self.state)
            for p in self.deferred:
                self._bring_up(p)
                if self.errors:
                    raise self.errors[0]
        except BaseException as exc:
            self.abort.set()
            with interrupts_deferred():
                for thread in threads:
                    thread.join(30)
                self.progress("stopping what was started")
                self.runtime.down(self.state, self.progress)
            if isinstance(exc, (NinesError, KeyboardInterrupt)):
                raise
            raise LabError(f"nines up failed: {type(exc).__name__}: {exc}") from exc
