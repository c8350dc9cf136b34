"""The backup scheduler: a small process the local runtime starts with the lab
(``python -m lab.dr.scheduler --config FILE``), recorded in the state file as ``dr-scheduler``
so ``nines status`` shows it and ``nines down`` stops it.

Each cycle it backs up every region whose newest backup is older than the policy's interval
(at once on start when there is none), then prunes by the retention policy. A failed backup
(the store is down, a restore holds the region) is tried again after ``RETRY_SECONDS``.
``GET /healthz`` answers with the last outcome of each region.
"""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

from lab.dr import catalog
from lab.dr.backup import backup_and_prune, regional_stores
from lab.dr.policy import BackupPolicy
from lab.errors import NinesError
from lab.runtime import health
from lab.servers.base import ManagedProcess, ServerSpec, free_port, wait_until
from lab.state import LabState, ProcessRecord, find_state, update_process

NAME = ROLE = "dr-scheduler"
CONFIG_FILE = "dr-scheduler.json"
RETRY_SECONDS = 30.0
HOST = "127.0.0.1"
log = logging.getLogger("nineslab.dr.scheduler")


def config_path(state_dir: Path | str) -> Path:
    return Path(state_dir) / "config" / CONFIG_FILE


def policy_of(state_dir: Path | str) -> BackupPolicy:
    """The policy the lab in ``state_dir`` was started with (the default when none was written)."""
    try:
        return BackupPolicy.model_validate(json.loads(config_path(state_dir).read_text())["policy"])
    except (OSError, ValueError, KeyError):
        return BackupPolicy()


class Scheduler:
    """Decides which regions are due and backs them up; the loop around it only waits."""

    def __init__(self, state_dir: Path, policy: BackupPolicy, *, clock: Callable[[], float] = time.time) -> None:
        self.state_dir, self.policy, self.clock = Path(state_dir), policy, clock
        self.root = policy.root(state_dir)
        self.retry_at: dict[str, float] = {}
        self.outcome: dict[str, dict] = {}

    def next_due(self, region: str) -> float:
        newest = catalog.latest(self.root, region)
        due = newest.started_at + self.policy.interval_seconds if newest else 0.0
        return max(due, self.retry_at.get(region, 0.0))

    def run_once(self, state: LabState) -> float:
        """Back up the regions that are due; the time the next one is due."""
        stores = regional_stores(state)
        for region, store in stores.items():
            now = self.clock()
            if self.next_due(region) > now:
                continue
            try:
                manifest, pruned = backup_and_prune(store, self.policy, self.state_dir, trigger="schedule",
                                                    clock=self.clock)
                self.retry_at.pop(region, None)
                self.outcome[region] = {"ok": True, "backup": manifest.id, "pruned": [m.id for m in pruned]}
                log.info("backed up %s: %s, %d bytes in %.1f s; pruned %d", region, manifest.id,
                         manifest.size_bytes, manifest.duration_seconds, len(pruned))
            except NinesError as exc:
                self.retry_at[region] = now + min(RETRY_SECONDS, self.policy.interval_seconds)
                self.outcome[region] = {"ok": False, "error": str(exc)}
                log.warning("backup of %s failed: %s", region, exc)
        return min((self.next_due(r) for r in stores), default=self.clock() + self.policy.interval_seconds)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            state = find_state(self.state_dir)
            if state is None:          # the lab is down
                return
            next_at = self.run_once(state)
            stop.wait(max(1.0, next_at - self.clock()))


def _serve_health(scheduler: Scheduler, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/healthz":
                self.send_error(404)
                return
            body = json.dumps({"ok": True, "regions": scheduler.outcome}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Handler)
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server


def start_with_lab(state: LabState, policy: BackupPolicy, progress: Callable[[str], None]) -> ProcessRecord | None:
    """Start the scheduler beside a lab that is up, and record it in the state file."""
    state_dir = Path(state.state_dir)
    path = config_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    port = free_port(HOST)
    path.write_text(json.dumps({"state_dir": str(state_dir), "port": port,
                                "policy": policy.model_dump()}, indent=2) + "\n")
    if not policy.schedule or not regional_stores(state):
        return None
    log_file = state_dir / "logs" / f"{NAME}.log"
    spec = ServerSpec(name=NAME, role=ROLE, argv=[sys.executable, "-m", "lab.dr.scheduler", "--config", str(path)],
                      log_file=log_file, ports={"main": port})
    process = ManagedProcess(spec)
    process.start()
    record = ProcessRecord(name=NAME, role=ROLE, kind="backup", pid=process.pid, create_time=process.create_time,
                           ports=spec.ports, log_file=str(log_file), config_file=str(path), argv=spec.argv,
                           depends_on=[r.name for r in state.processes_by(role="postgres") if r.region],
                           status="running")
    state.processes[NAME] = record
    update_process(state_dir, record)      # locked: an autoscaler may be adding replicas meanwhile
    wait_until(lambda: health.answers(record), timeout=30, what=NAME, alive=process.alive)
    progress(f"ready {NAME} (every {policy.interval_seconds:g} s, keep {policy.keep_last}, "
             f"max age {policy.max_age_hours:g} h, in {policy.root(state_dir)})")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.dr.scheduler", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = json.loads(args.config.read_text())
    scheduler = Scheduler(Path(config["state_dir"]), BackupPolicy.model_validate(config["policy"]))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = _serve_health(scheduler, int(config["port"]))
    try:
        scheduler.run(stop)
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
