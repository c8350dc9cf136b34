"""Load generator benchmark: how fast one Locust process goes with corrected timing on, and what it costs.

Against the trivial uvloop server (loadtests/trivial_server.py) on 127.0.0.1, one generator process:

1. plain Locust (FastHttpUser, closed loop, no nineslab harness): its ceiling on this machine;
2. nineslab closed model (harness on: samples, HDR, ledger): throughput and CPU per request;
3. nineslab open model at a fixed rate: CPU per request and latency with corrected timing;
4. nineslab open model, stepping the rate up: the highest rate sustained (>= 98 % of the
   target completed, nothing dropped, generator valid).

Prints the figures side by side. About two minutes on 2 cores.

    python benchmarks/bench_load.py [--steps 1000,2000,3000,4000,5000] [--seconds 6]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadtests.runner import RunConfig, run  # noqa: E402
from loadtests.scenarios import get_scenario  # noqa: E402

PLAIN = textwrap.dedent('''
    from locust import constant
    from locust.contrib.fasthttp import FastHttpUser
    from locust import task

    class Plain(FastHttpUser):
        wait_time = constant(0)

        @task
        def get(self):
            self.client.get("/")
''')


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "loadtests.trivial_server", "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("port="):
        proc.kill()
        raise SystemExit(f"trivial server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.strip().split('=')[1]}"


def plain_locust(url: str, seconds: float, tmp: Path, tag: str) -> dict:
    lf = tmp / "plain_locustfile.py"
    lf.write_text(PLAIN)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "locust", "-f", str(lf), "--headless", "-u", "10", "-r", "10",
                    "-t", f"{int(seconds)}s", "--host", url, "--only-summary", "--json-file",
                    str(tmp / tag), "--loglevel", "WARNING"], cwd=tmp, capture_output=True, timeout=120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    entries = json.loads((tmp / f"{tag}.json").read_text())
    n = sum(e["num_requests"] for e in entries)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"requests": n, "rps": n / seconds, "cpu_total_s": cpu}


def plain_per_request_us(short: dict, long: dict) -> float:
    """CPU per request of plain Locust from two runs of different length (start-up cancels out)."""
    dn = long["requests"] - short["requests"]
    return 1e6 * (long["cpu_total_s"] - short["cpu_total_s"]) / dn if dn > 0 else float("nan")


def nines_run(url: str, tmp: Path, name: str, seconds: float, rate: float | None = None,
              users: int | None = None, concurrency: int = 20) -> dict:
    return run(RunConfig(scenario=get_scenario("trivial"), duration=seconds, out=tmp / name, rate=rate,
                         users=users, concurrency=concurrency, host=url))


def per_request_us(doc: dict) -> float:
    n = doc["counts"]["ok"] + doc["counts"]["error"]
    return 1e6 * doc["generator"]["cpu_seconds"] / max(1, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="1000,2000,3000,4000,5000,6000")
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--fixed-rate", type=float, default=1000.0)
    args = ap.parse_args()
    server, url = start_server()
    t_start = time.time()
    load_at_start = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as d:
            tmp = Path(d)
            print(f"target: trivial uvloop server at {url}; one generator process; {args.seconds:g} s per run")
            plain_short = plain_locust(url, 2, tmp, "plain2")
            plain = plain_locust(url, args.seconds, tmp, "plain")
            closed = nines_run(url, tmp, "closed", args.seconds, users=10)
            fixed = nines_run(url, tmp, "fixed", args.seconds, rate=args.fixed_rate, concurrency=100)
            print()
            print(f"{'run':44} {'req/s':>8} {'CPU us/req':>11} {'p50 ms':>8} {'p99 ms':>8} {'p99 raw':>8}")
            print(f"{'plain Locust, closed, 10 users (no harness)':44} {plain['rps']:8.0f} "
                  f"{plain_per_request_us(plain_short, plain):11.0f} {'-':>8} {'-':>8} {'-':>8}")
            for label, doc in (("nineslab closed, 10 users (samples+HDR)", closed),
                               (f"nineslab open {args.fixed_rate:g}/s, corrected", fixed)):
                print(f"{label:44} {doc['rps']:8.0f} {per_request_us(doc):11.0f} {doc['p50_ms'] or 0:8.2f} "
                      f"{doc['p99_ms'] or 0:8.2f} {doc['p99_raw_ms'] or 0:8.2f}")
            overhead = per_request_us(closed) - plain_per_request_us(plain_short, plain)
            print(f"harness overhead over plain Locust: {overhead:.0f} us CPU per request; "
                  f"one core at 100 % would carry ~{1e6 / per_request_us(closed):.0f} req/s")
            print()
            print(f"{'open-model step':16} {'target/s':>9} {'done/s':>8} {'dropped':>8} {'late':>6} "
                  f"{'gen CPU %':>9} {'p99 ms':>8} {'valid':>6}")
            best = 0.0
            for rate in (float(x) for x in args.steps.split(",")):
                doc = nines_run(url, tmp, f"step-{rate:g}", args.seconds, rate=rate,
                                concurrency=max(50, int(rate / 10)))
                g = doc["generator"]
                cpu = max((p.get("cpu_mean_percent", 0) for p in g["processes"]), default=0)
                ok = doc["valid"] and doc["counts"]["dropped"] == 0 and doc["rps"] >= 0.98 * rate
                print(f"{'':16} {rate:9.0f} {doc['rps']:8.0f} {doc['counts']['dropped']:8d} {g['late']:6d} "
                      f"{cpu:9.0f} {doc['p99_ms'] or 0:8.2f} {str(ok):>6}")
                if not ok:
                    break
                best = rate
            print()
            print(f"highest rate one generator process sustained with corrected timing: {best:g} req/s "
                  f"(target >= 2000); generator overhead {per_request_us(fixed):.0f} us CPU per request "
                  f"at {args.fixed_rate:g}/s")
            print(f"benchmark took {time.time() - t_start:.0f} s; load average {load_at_start:.1f} at the start, "
                  f"{os.getloadavg()[0]:.1f} at the end (2 cores: above ~2, other work competes with the generator)")
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
