"""A trivial HTTP user: ``GET /`` on ``--host``. For the generator's own tests and benchmarks."""
from __future__ import annotations

from locust import constant
from locust.contrib.fasthttp import FastHttpUser

from loadtests.users.base import NinesUser


class TrivialUser(NinesUser, FastHttpUser):
    operation = "trivial.get"
    think_time = constant(0)          # closed model: as fast as the server answers
    network_timeout = 10.0
    connection_timeout = 10.0

    def perform(self, intended_ts: float | None) -> None:
        self.client.get("/", name=self.operation, context=self.context_for(intended_ts))
