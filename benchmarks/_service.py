"""One of the lab's Python services, started for a benchmark the way the lab starts it.

``start_service`` writes the process config, runs ``python -m MODULE --config FILE`` as a
``ManagedProcess`` (own session, log file, stopped with its children) and waits for
``/readyz``. Benchmarks stop it with ``.stop()`` in their ``finally``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import psutil

from lab.servers.base import ManagedProcess, ServerSpec, wait_until


def start_service(module: str, config: dict, workdir: Path, *, tag: str = "", timeout: float = 60.0) -> ManagedProcess:
    """Start ``python -m module`` with ``config`` (its ``port`` and ``name`` are used) and wait until ready."""
    name = config["name"] + (f"-{tag}" if tag else "")
    config_file = workdir / f"{name}.json"
    config_file.write_text(json.dumps(config))
    proc = ManagedProcess(ServerSpec(name=name, role=config["role"], log_file=workdir / f"{name}.out",
                                     argv=[sys.executable, "-m", module, "--config", str(config_file)]))
    proc.start()
    url = f"http://127.0.0.1:{config['port']}/readyz"
    try:
        wait_until(lambda: httpx.get(url, timeout=1).status_code == 200, timeout=timeout,
                   what=f"benchmark: {name} ready", alive=proc.alive)
    except Exception:
        proc.stop()
        raise
    return proc


def cpu_seconds(proc: ManagedProcess) -> float:
    """User + system CPU seconds the process has used so far."""
    return sum(psutil.Process(proc.pid).cpu_times()[:2])
