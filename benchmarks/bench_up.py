"""How long `nines up --profile quick` takes cold (first initdb) and warm, how long `nines down`
takes, and how much memory the whole quick topology holds — measured in one run, side by side.

    python benchmarks/bench_up.py [--warm-runs 3] [--profile quick]

Runs the real CLI in a fresh state dir under /tmp (removed at the end) and stops everything
it started, also on Ctrl-C. Target: warm `up` under 15 s on a 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import psutil

from lab.runtime.local import LocalRuntime
from lab.state import find_state, load_state

TARGET_WARM_UP_SECONDS = 15.0
LAST_STDERR = ""


READY = re.compile(r"\[\s*([\d.]+)s\] ready (\S+)")


def phases(stderr: str) -> dict[str, float]:
    """When each kind of part was ready, from the timestamped progress of `nines up`."""
    out: dict[str, float] = {}
    for seconds, name in READY.findall(stderr):
        kind = name.split("-")[0]
        out[kind] = max(out.get(kind, 0.0), float(seconds))
    return out


def timed(*args: str) -> float:
    global LAST_STDERR
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - began
    LAST_STDERR = result.stderr
    if result.returncode != 0:
        raise SystemExit(f"`nines {' '.join(args)}` failed with exit {result.returncode}: {result.stderr[-2000:]}")
    return seconds


def memory(state_dir: Path) -> tuple[dict[str, float], float, float]:
    """RSS and USS (MiB) of every process of the lab with its children, by role."""
    by_role: dict[str, float] = defaultdict(float)
    rss = uss = 0.0
    for record in load_state(state_dir).processes.values():
        try:
            top = psutil.Process(record.pid)
            family = [top] + top.children(recursive=True)
        except psutil.Error:
            continue
        for proc in family:
            try:
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            rss += info.rss / 2**20
            uss += info.uss / 2**20
            by_role[record.role] += info.rss / 2**20
    return dict(by_role), rss, uss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nineslab-bench-"))
    root.chmod(0o755)
    state_dir = str(root / "state")
    ups, downs, warm_phases = [], [], []
    load_before = os.getloadavg()[0]
    try:
        cold = timed("up", "--profile", args.profile, "--state-dir", state_dir)
        processes = len(load_state(state_dir).processes)
        by_role, rss, uss = memory(Path(state_dir))
        downs.append(timed("down", "--state-dir", state_dir))
        for _ in range(args.warm_runs):
            ups.append(timed("up", "--profile", args.profile, "--state-dir", state_dir))
            warm_phases.append(phases(LAST_STDERR))
            downs.append(timed("down", "--state-dir", state_dir))
    finally:
        state = find_state(state_dir)
        if state is not None:
            LocalRuntime(stop_grace=3).down(state, lambda _m: None)
        shutil.rmtree(root, ignore_errors=True)

    warm = statistics.median(ups)
    print(f"nines up --profile {args.profile} ({processes} processes, {psutil.cpu_count()} cores, "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)")
    print(f"  {'up, cold (initdb)':<26} {cold:6.1f} s")
    print(f"  {'up, warm (median of ' + str(len(ups)) + ')':<26} {warm:6.1f} s   runs: "
          + ", ".join(f"{u:.1f}" for u in ups))
    ready = {kind: statistics.median(p.get(kind, 0.0) for p in warm_phases) for kind in warm_phases[0]}
    print(f"  {'  warm: ready at (median)':<26} " + ", ".join(
        f"{kind} {t:.1f} s" for kind, t in sorted(ready.items(), key=lambda kv: kv[1])))
    print(f"  {'cold / warm':<26} {cold / warm:6.2f} x")
    print(f"  {'down (median of ' + str(len(downs)) + ')':<26} {statistics.median(downs):6.1f} s   runs: "
          + ", ".join(f"{d:.1f}" for d in downs))
    print(f"  {'memory, whole topology':<26} {rss:6.0f} MiB RSS, {uss:.0f} MiB USS (unshared)")
    for role, mib in sorted(by_role.items(), key=lambda kv: -kv[1]):
        print(f"    {role:<24} {mib:6.0f} MiB RSS")
    verdict = "meets" if warm < TARGET_WARM_UP_SECONDS else "MISSES"
    print(f"  warm up {warm:.1f} s {verdict} the {TARGET_WARM_UP_SECONDS:.0f} s target "
          f"({warm / TARGET_WARM_UP_SECONDS:.0%} of it)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
