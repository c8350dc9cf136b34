"""A small steady load on the profiles API for the zero-downtime tests: writers and readers
that record every acknowledged write (a ledger, as the load generator's) and every failure."""
from __future__ import annotations

import asyncio
import hashlib
import json
import random
from dataclasses import dataclass, field

import httpx

REGIONS = ["us-east", "eu-west", "ap-south"]


def canonical_checksum(doc: dict) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Ledger:
    acked: dict[str, tuple[int, str]] = field(default_factory=dict)   # id -> (version, checksum)
    failures: list[str] = field(default_factory=list)
    writes: int = 0
    reads: int = 0

    def ack(self, profile_id: str, version: int, checksum: str) -> None:
        if profile_id not in self.acked or self.acked[profile_id][0] < version:
            self.acked[profile_id] = (version, checksum)


async def run_load(url: str, ledger: Ledger, stop: asyncio.Event, *, ids: int = 100, workers: int = 6,
                   seed: int = 1) -> None:
    rng = random.Random(seed)

    async def worker(n: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            while not stop.is_set():
                pid = f"user-{rng.randrange(ids):04d}"
                try:
                    if rng.random() < 0.6 or pid not in ledger.acked:
                        body = {"display_name": f"name {rng.random():.6f}", "home_region": rng.choice(REGIONS),
                                "settings": {"theme": rng.choice(["dark", "light"]), "n": rng.randrange(1000)}}
                        r = await client.put(f"/profiles/{pid}", json=body)
                        if r.status_code != 200:
                            ledger.failures.append(f"PUT {pid}: {r.status_code} {r.text[:200]}")
                            continue
                        got = r.json()
                        expected = canonical_checksum({"id": pid, **body})
                        if got["checksum"] != expected:
                            ledger.failures.append(f"PUT {pid}: checksum {got['checksum']} != {expected}")
                        ledger.ack(pid, got["version"], got["checksum"])
                        ledger.writes += 1
                    else:
                        known = ledger.acked.get(pid)
                        r = await client.get(f"/profiles/{pid}")
                        if r.status_code != 200:
                            ledger.failures.append(f"GET {pid}: {r.status_code} {r.text[:200]}")
                            continue
                        if known and r.json()["version"] < known[0]:
                            ledger.failures.append(f"GET {pid}: version {r.json()['version']} < acked {known[0]}")
                        ledger.reads += 1
                except httpx.HTTPError as exc:
                    ledger.failures.append(f"{pid}: {type(exc).__name__}: {exc}")

    await asyncio.gather(*(worker(n) for n in range(workers)))


async def wait_progress(ledger: Ledger, more: int, timeout: float = 20.0) -> None:
    """Wait (polling, with a deadline) until ``more`` further requests completed."""
    target = ledger.writes + ledger.reads + more
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ledger.writes + ledger.reads < target:
        if loop.time() > deadline:
            raise AssertionError(f"load made no progress: {ledger.failures[-3:]}")
        await asyncio.sleep(0.02)


async def check_no_loss(url: str, ledger: Ledger) -> list[str]:
    """Every acknowledged write is readable at its version (or a newer one) with its checksum."""
    lost = []
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for pid, (version, checksum) in sorted(ledger.acked.items()):
            r = await client.get(f"/profiles/{pid}")
            if r.status_code != 200:
                lost.append(f"{pid}: {r.status_code}")
                continue
            got = r.json()
            if got["version"] < version or (got["version"] == version and got["checksum"] != checksum):
                lost.append(f"{pid}: acked v{version} {checksum[:8]}, read v{got['version']} {got['checksum'][:8]}")
    return lost
