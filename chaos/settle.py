"""The lab at rest: what the main job waits for between experiments.

An experiment's steady-state hypothesis is about the lab, not about the previous experiment's
aftermath. Two things outlive an experiment: replicas the autoscaler added for its load (the
full profile's autoscaler removes them one at a time, after ``scale_in_cooldown`` of low load,
so they leave in the next experiment's first seconds and their clients reconnect there), and
a region its routers still fail over while its servers come back. So before each experiment
but the first, the main job waits — at most ``timeout`` seconds — until

- the autoscaler (if the lab has one) has every region at its minimum of replicas, and
- every router routes a user of every region to that region (no failover).

The decision is pure (:func:`busy_reasons` over the answers); :func:`wait_for_rest` polls::

    rest = wait_for_rest(state.endpoints, regions, timeout=120)
    rest["at_rest"], rest["waited_seconds"], rest["busy"]     # busy: why it was not, at the end
"""
from __future__ import annotations

import time
from typing import Any, Callable

import httpx

POLL_SECONDS = 1.0
PROBE_USER = "settle-probe"


def busy_reasons(autoscaler_status: dict | None, routes: dict[tuple[str, str], dict | None]) -> list[str]:
    """Why the lab is not at rest (empty: it is). ``routes``: (router, region) -> its answer, or
    None when it did not answer."""
    reasons = []
    if autoscaler_status:
        floor = int((autoscaler_status.get("settings") or {}).get("min", 1))
        for region, info in sorted((autoscaler_status.get("regions") or {}).items()):
            replicas = len(info.get("replicas") or [])
            if replicas > floor:
                reasons.append(f"{region} has {replicas} replicas, its minimum is {floor}")
    for (router, region), answer in sorted(routes.items()):
        if answer is None:
            reasons.append(f"{router} does not route {region}")
        elif answer.get("failed_over") or answer.get("region") != region:
            reasons.append(f"{router} fails {region} over to {answer.get('region')}")
    return reasons


def _get_json(url: str, params: dict | None = None) -> dict | None:
    try:
        r = httpx.get(url, params=params, timeout=2.0)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def observe(endpoints: dict[str, str], regions: list[str],
            get: Callable[[str, dict | None], dict | None] = _get_json) -> list[str]:
    """One look at the lab: :func:`busy_reasons` of what the autoscaler and routers answer now."""
    status = get(endpoints["autoscaler"].rstrip("/") + "/status", None) if endpoints.get("autoscaler") else None
    routers = sorted(name for name in endpoints if name.startswith("router-"))
    routes = {(router, region): get(endpoints[router].rstrip("/") + "/route", {"user": f"{PROBE_USER}@{region}"})
              for router in routers for region in regions}
    return busy_reasons(status, routes)


def wait_for_rest(endpoints: dict[str, str], regions: list[str], *, timeout: float,
                  clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                  look: Callable[[], list[str]] | None = None) -> dict[str, Any]:
    """Poll until the lab is at rest or ``timeout`` passed; the record says which, and why not."""
    look = look or (lambda: observe(endpoints, regions))
    began = clock()
    while True:
        busy = look()
        waited = clock() - began
        if not busy or waited >= timeout:
            return {"at_rest": not busy, "waited_seconds": round(waited, 3), "busy": busy}
        sleep(POLL_SECONDS)
