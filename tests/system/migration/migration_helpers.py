"""Helpers of the migration tests: the fault proxy and the service as real processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from chaos.proxy import FaultProxy, server_command
from lab.servers.base import free_port
from waiting import wait_for  # noqa: F401 - re-exported for the tests


class Proc:
    """A subprocess with its log; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, env: dict | None = None) -> None:
        self.log = log
        self._fh = open(log, "ab")
        self.popen = subprocess.Popen(argv, stdout=self._fh, stderr=subprocess.STDOUT,
                                      env={**os.environ, **(env or {})}, start_new_session=True)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._fh.close()
        return self.popen.returncode

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_fault_proxy(tmp: Path) -> tuple[Proc, FaultProxy]:
    port = free_port()
    proc = Proc(server_command("127.0.0.1", port), tmp / "proxy.log")
    proxy = FaultProxy(f"http://127.0.0.1:{port}", timeout=10)
    try:
        wait_for(lambda: proc.alive() and proxy.healthy(), "fault proxy up")
    except AssertionError:
        proc.stop()
        raise
    return proc, proxy


def start_service(tmp: Path, name: str, old_dsn: str, new_dsn: str, settings: dict | None = None) -> tuple[Proc, str]:
    port = free_port()
    config = {"name": name, "role": "migration", "region": None, "host": "127.0.0.1", "port": port,
              "regions": ["us-east", "eu-west", "ap-south"], "log_file": str(tmp / f"{name}.log"),
              "deps": {"postgres_old": old_dsn, "postgres_new": new_dsn},
              "settings": {"store_timeout_seconds": 1.0, "new_retry_seconds": 0.3, **(settings or {})},
              "events_file": str(tmp / f"{name}.events.jsonl")}
    cfg = tmp / f"{name}.json"
    cfg.write_text(json.dumps(config))
    proc = Proc([sys.executable, "-m", "system.migration", "--config", str(cfg)], tmp / f"{name}.out")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.alive() and httpx.get(url + "/readyz", timeout=1).status_code == 200,
                 f"migration service {name} ready")
    except AssertionError:
        proc.stop()
        raise AssertionError(f"service did not start: {proc.tail()}")
    return proc, url
