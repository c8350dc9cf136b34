"""Chat benchmark: acknowledged messages a second and send->ack / send->deliver latency at
100 and 1,000 connected users, with the quick profile (3 regions, 1 chat server each,
a 3-node NATS JetStream cluster with R3 streams, PostgreSQL and Redis per region).

    python benchmarks/bench_chat.py [--rate 2000] [--seconds 10] [--users 100,1000] [--json FILE]
    python benchmarks/bench_chat.py --compare REV [--runs 3] [--rate 400] [--users 1000]

Open model: sends are scheduled at ``--rate`` a second whatever the answers, spread over
random sender/recipient pairs across regions; latency is measured from the intended send
time, so a stalled server shows as latency, not as a lower offered rate. Every delivered
message is answered with a delivery receipt, as real clients do. Memory per idle connection
is the growth of the chat servers' RSS when the users connect, divided by their number.
Targets: >= 2,000 acked/s with p99 send->ack < 50 ms at 1,000 connections; <= 50 KB per idle
connection. The load generator shares the machine's cores with the servers.

``--compare REV`` measures the code of git revision REV (exported to a temporary tree) and the
working tree in alternating runs, and prints the median of each side and their ratios side by
side. On a shared machine the CPU milliseconds per acked message are the steadier figure: a
saturated run loses throughput and latency to its neighbours, far less CPU per message.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
import psutil  # noqa: E402
import uvloop  # noqa: E402
import websockets  # noqa: E402

from lab.servers.group import ServerGroup  # noqa: E402
from system.chat.devlab import ChatLab  # noqa: E402
from system.common.auth import issue_token  # noqa: E402

REGIONS = ["us-east", "eu-west", "ap-south"]
SETTINGS = {"rate_limit_per_second": 1000, "rate_limit_burst": 2000}
BODY = "x" * 64


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class User:
    __slots__ = ("name", "ws", "reader")

    def __init__(self, name: str) -> None:
        self.name, self.ws, self.reader = name, None, None


class Load:
    def __init__(self, lab: ChatLab) -> None:
        self.lab = lab
        self.pending: dict[str, float] = {}
        self.ack_ms: list[float] = []
        self.deliver_ms: list[float] = []
        self.acked = 0
        self.errors: dict[str, int] = {}
        self.ids = itertools.count()
        self.measuring = False

    async def connect(self, names: list[str]) -> list[User]:
        users = [User(n) for n in names]
        urls = {r: self.lab.chat_urls[f"chat-{r}-1"].replace("http", "ws") + "/ws" for r in REGIONS}
        sem = asyncio.Semaphore(50)

        async def one(u: User) -> None:
            async with sem:
                region = u.name.rsplit("@", 1)[1]
                u.ws = await websockets.connect(urls[region], additional_headers={
                    "Authorization": "Bearer " + issue_token(self.lab.secret, u.name)},
                    max_size=None, ping_interval=None, open_timeout=30, compression=None)
                await u.ws.recv()                                   # hello
                u.reader = asyncio.create_task(self.read(u))
        await asyncio.gather(*(one(u) for u in users))
        return users

    async def read(self, u: User) -> None:
        try:
            async for raw in u.ws:
                now = time.time()
                f = orjson.loads(raw)
                t = f["type"]
                if t == "ack":
                    start = self.pending.pop(f["client_id"], None)
                    if start is not None and self.measuring:
                        self.ack_ms.append((now - start) * 1000)
                        self.acked += 1
                elif t == "message":
                    await u.ws.send('{"type":"ack","id":"%s"}' % f["id"])
                    if self.measuring and f.get("sent_ts"):
                        self.deliver_ms.append((now - f["sent_ts"]) * 1000)
                elif t == "error":
                    self.pending.pop(f.get("client_id"), None)
                    self.errors[f["code"]] = self.errors.get(f["code"], 0) + 1
        except websockets.exceptions.ConnectionClosed:
            pass

    async def run(self, users: list[User], rate: float, seconds: float, rng: random.Random) -> float:
        """Send at ``rate`` a second for ``seconds``; the measured wall time."""
        start = time.time()
        sent = 0
        self.measuring = True
        while True:
            now = time.time()
            if now - start >= seconds:
                break
            due = int((now - start) * rate) - sent
            for _ in range(due):
                intended = start + (sent + 1) / rate
                a, b = rng.sample(users, 2)
                cid = f"c{next(self.ids)}"
                self.pending[cid] = intended
                frame = orjson.dumps({"type": "send", "client_id": cid, "to": b.name, "body": BODY,
                                      "sent_ts": intended}).decode()
                try:
                    await a.ws.send(frame)
                except websockets.exceptions.ConnectionClosed:
                    self.errors["closed"] = self.errors.get("closed", 0) + 1
                sent += 1
            await asyncio.sleep(0.002)
        deadline = time.time() + 5                      # let the tail arrive
        while self.pending and time.time() < deadline:
            await asyncio.sleep(0.02)
        self.measuring = False
        unacked = len(self.pending)
        if unacked:
            self.errors["unacked"] = unacked
        return time.time() - start


def cpu_by_role(lab: ChatLab) -> dict[str, float]:
    """CPU seconds used so far by each kind of process (PostgreSQL backends included)."""
    out: dict[str, float] = {}
    for proc in lab.group.processes:
        try:
            ps = psutil.Process(proc.pid)
            family = [ps] + ps.children(recursive=True)
        except psutil.Error:
            continue
        for p in family:
            try:
                t = p.cpu_times()
                out[proc.spec.role] = out.get(proc.spec.role, 0.0) + t.user + t.system
            except psutil.Error:
                pass
    t = psutil.Process().cpu_times()
    out["loadgen"] = t.user + t.system
    return out


def servers_rss(lab: ChatLab) -> int:
    return sum(psutil.Process(p.pid).memory_info().rss for p in lab.chat.values())


async def phase(lab: ChatLab, n: int, rate: float, seconds: float, seed: int) -> dict:
    rng = random.Random(seed)
    load = Load(lab)
    names = [f"u{n}x{i}@{REGIONS[i % len(REGIONS)]}" for i in range(n)]
    rss0 = servers_rss(lab)
    users = await load.connect(names)
    await asyncio.sleep(1.0)
    rss1 = servers_rss(lab)
    cpu0 = cpu_by_role(lab)
    wall = await load.run(users, rate, seconds, rng)
    cpu1 = cpu_by_role(lab)
    cpu_ms = {k: (cpu1.get(k, 0) - cpu0.get(k, 0)) * 1000 / max(1, load.acked) for k in cpu1}
    for u in users:
        await u.ws.close()
        u.reader.cancel()
    return {"users": n, "offered_rate": rate, "acked_per_s": load.acked / wall,
            "ack_p50_ms": pct(load.ack_ms, 0.5), "ack_p99_ms": pct(load.ack_ms, 0.99),
            "deliver_p50_ms": pct(load.deliver_ms, 0.5), "deliver_p99_ms": pct(load.deliver_ms, 0.99),
            "delivered": len(load.deliver_ms), "errors": load.errors,
            "kb_per_idle_connection": max(0, rss1 - rss0) / n / 1024,
            "cpu_ms_per_message": cpu_ms, "machine_load": psutil.getloadavg()[0]}


def compare(rev: str, runs: int, args: argparse.Namespace) -> int:
    """Alternate runs of revision ``rev`` and of the working tree; medians and ratios side by side."""
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="nineslab-bench-chat-rev-") as tmp:
        base = Path(tmp) / "tree"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(here), "archive", rev], capture_output=True)
        if archive.returncode != 0:
            print(f"bench_chat: cannot export revision {rev!r}: {archive.stderr.decode().strip()}", file=sys.stderr)
            return 2
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        sides: dict[str, list[dict]] = {rev: [], "working tree": []}
        for i in range(runs):
            for name, tree in ((rev, base), ("working tree", here)):
                out = Path(tmp) / f"{i}-{len(sides[name])}-{name.replace(' ', '_')}.json"
                print(f"run {i + 1}/{runs}: {name} (load average {psutil.getloadavg()[0]:.1f}) ...", flush=True)
                subprocess.run([sys.executable, str(tree / "benchmarks" / "bench_chat.py"), "--users", args.users,
                                "--rate", str(args.rate), "--seconds", str(args.seconds), "--seed", str(args.seed),
                                "--json", str(out)], cwd=tree, check=True, stdout=subprocess.DEVNULL)
                sides[name].append(json.loads(out.read_text())[-1])
    figures = {"acked/s": lambda r: r["acked_per_s"], "ack p50 ms": lambda r: r["ack_p50_ms"],
               "ack p99 ms": lambda r: r["ack_p99_ms"], "deliver p50 ms": lambda r: r["deliver_p50_ms"],
               "deliver p99 ms": lambda r: r["deliver_p99_ms"],
               "chat CPU ms/msg": lambda r: r["cpu_ms_per_message"].get("chat", float("nan")),
               "nats CPU ms/msg": lambda r: r["cpu_ms_per_message"].get("nats", float("nan")),
               "loadgen CPU ms/msg": lambda r: r["cpu_ms_per_message"].get("loadgen", float("nan")),
               "all CPU ms/msg": lambda r: sum(r["cpu_ms_per_message"].values()),
               "load average": lambda r: r["machine_load"]}
    old, new = sides[rev], sides["working tree"]
    print(f"\nmedian of {runs} alternating runs, {args.users} users, {args.rate:g} sends/s offered")
    print(f"{'':>18} {rev[:12]:>12} {'working tree':>13} {'ratio':>7}")
    for label, get in figures.items():
        a, b = statistics.median(get(r) for r in old), statistics.median(get(r) for r in new)
        print(f"{label:>18} {a:>12.2f} {b:>13.2f} {b / a if a else float('nan'):>7.2f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--users", default="100,1000")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here too")
    ap.add_argument("--compare", metavar="REV", help="alternate runs of git revision REV and the working tree")
    ap.add_argument("--runs", type=int, default=3, help="runs of each side with --compare")
    args = ap.parse_args()
    if args.compare:
        return compare(args.compare, max(1, args.runs), args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    root = Path(tempfile.mkdtemp(prefix="nineslab-bench-chat-"))
    t0 = time.time()
    results = []
    try:
        with ServerGroup(root) as group:
            lab = ChatLab(group, REGIONS)
            print("starting the quick profile: 3 regions, 3-node NATS, PostgreSQL + Redis per region ...",
                  flush=True)
            lab.start_infra(3)
            for r in REGIONS:
                lab.start_chat(f"chat-{r}-1", r, SETTINGS, wait=False)
            for r in REGIONS:
                lab.wait_ready(f"chat-{r}-1")
            print(f"  up in {time.time() - t0:.1f} s", flush=True)
            for n in [int(x) for x in args.users.split(",")]:
                print(f"{n} users, {args.rate:g} sends/s for {args.seconds:g} s ...", flush=True)
                res = uvloop.run(phase(lab, n, args.rate, args.seconds, args.seed))
                results.append(res)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print()
    print(f"{'users':>6} {'acked/s':>9} {'ack p50':>8} {'ack p99':>8} {'dlv p50':>8} {'dlv p99':>8} "
          f"{'KB/conn':>8}  errors")
    for r in results:
        print(f"{r['users']:>6} {r['acked_per_s']:>9.0f} {r['ack_p50_ms']:>7.1f}ms {r['ack_p99_ms']:>7.1f}ms "
              f"{r['deliver_p50_ms']:>7.1f}ms {r['deliver_p99_ms']:>7.1f}ms {r['kb_per_idle_connection']:>8.1f}  "
              f"{r['errors'] or '-'}")
    print("\nCPU milliseconds per acked message, by process kind (the bottleneck is the largest):")
    for r in results:
        parts = "  ".join(f"{k} {v:.2f}" for k, v in sorted(r["cpu_ms_per_message"].items(), key=lambda kv: -kv[1]))
        print(f"{r['users']:>6}  {parts}   (1-min load average {r['machine_load']:.1f} on {psutil.cpu_count()} cores)")
    print(f"targets at 1,000 users: >= 2000 acked/s, ack p99 < 50 ms, <= 50 KB per idle connection; "
          f"total {time.time() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
