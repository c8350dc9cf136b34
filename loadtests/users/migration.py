"""The migration user: profile writes and reads on the migration service's REST API.

``PUT /profiles/{id}`` with ``{"display_name", "home_region", "settings"}`` answers the
stored profile with its ``version`` and ``checksum`` (sha256 of the canonical JSON of
``{"id", "display_name", "home_region", "settings"}``); every acknowledged write goes to
the ledger (``kind: profile``) so a checker can prove no write was lost in any phase.
A read (``GET /profiles/{id}``) of a profile this user wrote must return at least the
version last acknowledged — an older one is a failed ``profile.read`` ("stale read"),
which is what a migration's read-from-new phase can get wrong.

Each user owns a few profile ids and rewrites them, so versions climb.
"""
from __future__ import annotations

import itertools
import time
from typing import Any

from locust import between
from locust.contrib.fasthttp import FastHttpUser

from loadtests.harness import lab
from loadtests.ledger import checksum
from loadtests.users.base import NinesUser

_COUNTER = itertools.count()
PROFILES_PER_USER = 5
WRITE_SHARE = 0.5


class ProfileUser(NinesUser, FastHttpUser):
    operation = "profile.write"
    think_time = between(0.2, 1.0)
    network_timeout = 10.0
    connection_timeout = 10.0
    weight = 2

    def __init__(self, environment: Any) -> None:
        if not self.host and not environment.host:
            self.host = lab(environment).migration
        super().__init__(environment)

    def on_start(self) -> None:
        gen = self.gen
        n = next(_COUNTER)
        self.ids = [f"ld{gen.seed}w{gen.index}u{n}p{k}" for k in range(PROFILES_PER_USER)]
        self.acked: dict[str, int] = {}          # id -> last acknowledged version
        self.region = ("us-east", "eu-west", "ap-south")[n % 3]
        self.writes = itertools.count(1)

    def perform(self, intended_ts: float | None) -> None:
        rng = self.gen.rng
        if not self.acked or rng.random() < WRITE_SHARE:
            self._write(rng.choice(self.ids), intended_ts)
        else:
            self._read(rng.choice(sorted(self.acked)), intended_ts)

    def _write(self, pid: str, intended_ts: float | None) -> None:
        k = next(self.writes)
        body = {"display_name": f"load user {pid} #{k}", "home_region": self.region,
                "settings": {"n": k, "theme": ("dark", "light")[k % 2]}}
        sent = checksum({"id": pid, **body})
        with self.client.put(f"/profiles/{pid}", json=body, name="profile.write", catch_response=True,
                             context=self.context_for(intended_ts, region=self.region)) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:120]}")
                return
            try:
                stored = resp.json()
                version = int(stored["version"])
            except (ValueError, KeyError, TypeError):
                resp.failure("the answer is not a stored profile")
                return
            if stored.get("checksum") not in (None, sent):
                resp.failure("the stored checksum differs from the canonical JSON written")
                return
            self.acked[pid] = max(version, self.acked.get(pid, 0))
            self.gen.write_ledger("profile", id=pid, version=version, checksum=sent, ts=time.time())

    def _read(self, pid: str, intended_ts: float | None) -> None:
        with self.client.get(f"/profiles/{pid}", name="profile.read", catch_response=True,
                             context=self.context_for(intended_ts, region=self.region)) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:120]}")
                return
            try:
                version = int(resp.json()["version"])
            except (ValueError, KeyError, TypeError):
                resp.failure("the answer is not a stored profile")
                return
            if version < self.acked.get(pid, 0):
                resp.failure(f"stale read: version {version} < acknowledged {self.acked[pid]}")
