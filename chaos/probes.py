"""Live probes the engine runs against the lab: HTTP (status in tolerance) and SQL (first
column of the first row in tolerance). I/O only; judging is chaos.hypothesis.

URLs and targets may name the lab's endpoints: ``{endpoints[router-1]}/readyz``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import httpx

from chaos.hypothesis import probe_result


def run_http(probe: Any, endpoints: dict[str, str]) -> dict:
    try:
        url = probe.url.format(endpoints=endpoints)
    except (KeyError, IndexError) as exc:
        return probe_result(probe, None, error=f"unknown endpoint {exc}")
    try:
        response = httpx.request(probe.method, url, timeout=probe.timeout)
        return probe_result(probe, response.status_code)
    except httpx.HTTPError as exc:
        return probe_result(probe, None, error=f"{type(exc).__name__}: {exc}")


def run_sql(probe: Any, endpoints: dict[str, str]) -> dict:
    dsn = endpoints.get(probe.target)
    if dsn is None:
        return probe_result(probe, None, error=f"no endpoint {probe.target!r}")
    dsn = _with_database(dsn, probe.database)
    try:
        value = asyncio.run(_fetchval(dsn, probe.query, probe.timeout))
        return probe_result(probe, value)
    except Exception as exc:  # noqa: BLE001 - a failing probe is a result, not a crash
        return probe_result(probe, None, error=f"{type(exc).__name__}: {exc}")


async def _fetchval(dsn: str, query: str, timeout: float) -> Any:
    import asyncpg
    conn = await asyncpg.connect(dsn, timeout=timeout)
    try:
        return await conn.fetchval(query, timeout=timeout)
    finally:
        await conn.close()


def _with_database(dsn: str, database: str) -> str:
    base, _, _ = dsn.rpartition("/")
    return f"{base}/{database}" if base.count("/") >= 2 else dsn


def run_live(probe: Any, endpoints: dict[str, str]) -> dict:
    return run_http(probe, endpoints) if probe.type == "http" else run_sql(probe, endpoints)


def run_action(action: Any, endpoints: dict[str, str], *, clock: Any = None) -> dict:
    """One scheduled HTTP step; ``ok`` when the status is the expected one."""
    import time as _time
    clock = clock or _time.time
    started = clock()
    out: dict[str, Any] = {"name": getattr(action, "name", None) or f"{action.method} {action.url}",
                           "at": getattr(action, "at", None), "start": started}
    try:
        url = action.url.format(endpoints=endpoints)
        response = httpx.request(action.method, url, json=action.body, timeout=getattr(action, "timeout", 60.0))
        out["status"] = response.status_code
        out["body"] = response.text[:300]
        expect = getattr(action, "expect_status", None)
        expected = [expect] if isinstance(expect, int) else (expect or [])
        out["ok"] = not expected or response.status_code in expected
    except (KeyError, IndexError) as exc:
        out.update(ok=False, error=f"unknown endpoint {exc}")
    except httpx.HTTPError as exc:
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}")
    out["end"] = clock()
    return out
