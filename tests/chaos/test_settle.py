"""The lab at rest between experiments (chaos.settle): the pure decision from scenario tables,
the wait in virtual time."""
from __future__ import annotations

import pytest

from chaos.settle import busy_reasons, wait_for_rest

HOME = {"region": "eu-west", "failed_over": False}


def scaler(**replicas: int) -> dict:
    return {"settings": {"min": 2}, "regions": {r.replace("_", "-"): {"replicas": [f"chat-{r}-{i}" for i in range(n)]}
                                                  for r, n in replicas.items()}}


@pytest.mark.parametrize("status, routes, expected", [
    (None, {}, []),                                                              # quick lab: nothing to wait for
    (scaler(eu_west=2, us_east=2), {("router-1", "eu-west"): HOME}, []),
    (scaler(eu_west=3), {}, ["eu-west has 3 replicas, its minimum is 2"]),       # a scale-in is still due
    (None, {("router-1", "eu-west"): None}, ["router-1 does not route eu-west"]),
    (None, {("router-2", "eu-west"): {"region": "us-east", "failed_over": True}},
     ["router-2 fails eu-west over to us-east"]),
])
def test_busy_reasons(status, routes, expected):
    assert busy_reasons(status, routes) == expected


def test_the_wait_ends_when_the_lab_rests_and_gives_up_at_the_timeout():
    now = [0.0]
    looks = iter([["eu-west has 3 replicas, its minimum is 2"]] * 3 + [[]])
    rest = wait_for_rest({}, [], timeout=60, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
                         look=lambda: next(looks))
    assert rest == {"at_rest": True, "waited_seconds": 3.0, "busy": []}

    now[0] = 0.0
    rest = wait_for_rest({}, [], timeout=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s),
                         look=lambda: ["router-1 does not route eu-west"])
    assert rest == {"at_rest": False, "waited_seconds": 5.0, "busy": ["router-1 does not route eu-west"]}
