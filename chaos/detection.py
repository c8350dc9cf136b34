"""Detection, failover, recovery, downtime and budget: what a fault cost, as pure functions
over per-second SLIs (chaos.slis.per_second rows, ``t`` relative to the load start) and the
services' mechanism events (contracts §5, absolute ``ts``).

- detection: fault start -> the first matching mechanism event (a router marking the
  server unhealthy, a breaker opening); None when the system never noticed;
- failover: detection -> the first ``failover``/``failed_over`` event, else None;
- recovery: fault end -> the first second that starts ``hold`` consecutive seconds whose
  availability is within ``tolerance`` of the baseline; 0 if it never left; None if never back;
- downtime: seconds whose availability fell below the SLO;
- budget minutes burned: downtime seconds / 60 (the 52.56-minute budget is time-based).
"""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any, Iterable

BUDGET_MINUTES_PER_YEAR = 52.56


def matches(event: dict, matcher: dict) -> bool:
    """An event matches when every given field does (subject and source as globs)."""
    for key in ("kind", "state"):
        if matcher.get(key) and event.get(key) != matcher[key]:
            return False
    for key in ("subject", "source"):
        if matcher.get(key) and not fnmatch.fnmatchcase(str(event.get(key, "")), matcher[key]):
            return False
    return True


def default_matchers(kind: str, targets: list[str], *, link_roles: dict[str, tuple[str, str]] | None = None,
                     regions: list[str] | None = None) -> list[dict]:
    """The mechanism that should notice a fault when the experiment names none.

    A process fault on a chat server: a router marks it unhealthy. A fault on a link to
    postgres/redis/nats: the service at its near end opens that breaker. A partition or a
    whole-region process fault: the router fails the region over.
    """
    link_roles = link_roles or {}
    if kind == "load.spike":     # the autoscaler noticed when a new replica is healthy in every router
        return [{"kind": "autoscale", "state": "routed"}]
    if kind == "proxy.partition" or any(t.startswith("region:") for t in targets):
        regions = regions or [t.removeprefix("region:") for t in targets]
        return [{"kind": "failover", "subject": r, "state": "failed_over"} for r in regions]
    if kind.startswith("process.") or kind.startswith("docker."):
        out = []
        for t in targets:
            if t.startswith("chat-"):
                out.append({"kind": "health", "subject": t, "state": "unhealthy"})
            else:   # an infrastructure process: whoever depends on it opens a breaker
                role = t.split("-", 1)[0]
                role = {"pg": "postgres"}.get(role, role)
                out.append({"kind": "breaker", "subject": role, "state": "open"})
        return out
    if kind.startswith("proxy."):
        out = []
        for t in targets:
            source, dest_role = link_roles.get(t, (t.split(">")[0], t.split(">")[-1].split("-")[0]))
            dest_role = {"pg": "postgres"}.get(dest_role, dest_role)
            out.append({"kind": "breaker", "source": source, "subject": dest_role, "state": "open"})
        return out
    return []


def first_event(events: Iterable[dict], matchers: list[dict], since: float, until: float | None = None) -> dict | None:
    best = None
    for e in events:
        ts = e.get("ts")
        if not isinstance(ts, (int, float)) or ts < since or (until is not None and ts > until):
            continue
        if any(matches(e, m) for m in matchers) and (best is None or ts < best["ts"]):
            best = e
    return best


def detection_seconds(events: list[dict], matchers: list[dict], fault_start: float,
                      until: float | None = None) -> tuple[float | None, dict | None]:
    event = first_event(events, matchers, fault_start, until)
    return (round(event["ts"] - fault_start, 3), event) if event else (None, None)


def failover_seconds(events: list[dict], detected_at: float | None, until: float | None = None) -> float | None:
    if detected_at is None:
        return None
    event = first_event(events, [{"kind": "failover", "state": "failed_over"}], detected_at, until)
    return round(event["ts"] - detected_at, 3) if event else None


def recovery_seconds(per_second: list[dict], fault_end_t: float, baseline: float | None, *,
                     tolerance: float = 0.01, hold: float = 3) -> float | None:
    """Seconds from the fault's end until availability is back near ``baseline`` for ``hold`` s.

    Seconds without samples neither break nor extend a streak. The streak may start before
    the fault's end (the system may have healed while the fault was still on): then 0.
    """
    if baseline is None:
        baseline = 1.0
    threshold = baseline - tolerance
    need = max(1, int(round(hold)))
    streak_start: float | None = None
    streak = 0
    # start looking at the last bad second before the end, so a streak spanning the end counts
    for row in per_second:
        a = row.get("availability")
        if a is None:
            continue
        if a >= threshold:
            if streak == 0:
                streak_start = row["t"]
            streak += 1
            if streak >= need and row["t"] >= fault_end_t:
                return round(max(0.0, streak_start - fault_end_t), 3)
        else:
            streak, streak_start = 0, None
    return None


def downtime_seconds(per_second: list[dict], slo_availability: float, start_t: float = 0.0,
                     end_t: float | None = None) -> float:
    return float(sum(1 for row in per_second
                     if row.get("availability") is not None and row["availability"] < slo_availability
                     and row["t"] >= start_t and (end_t is None or row["t"] < end_t)))


def budget_minutes(downtime: float) -> float:
    return round(downtime / 60.0, 4)


def read_events(state_dir: str | Path, since: float | None = None, until: float | None = None) -> list[dict]:
    """Every mechanism event under ``<state_dir>/events/*.jsonl`` in [since, until]; bad lines skipped."""
    out = []
    for path in sorted((Path(state_dir) / "events").glob("*.jsonl")):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue   # a line being written right now
            ts = event.get("ts") if isinstance(event, dict) else None
            if not isinstance(ts, (int, float)):
                continue
            if (since is None or ts >= since) and (until is None or ts <= until):
                out.append(event)
    out.sort(key=lambda e: e["ts"])
    return out


def measure_fault(*, fault: Any, start_ts: float, end_ts: float, t0: float, per_second: list[dict],
                  events: list[dict], matchers: list[dict], baseline: float | None, slo: Any,
                  next_start_t: float | None = None) -> dict:
    """The contract's measurement row for one fault (times relative/absolute as noted)."""
    start_t, end_t = start_ts - t0, end_ts - t0
    detection, event = detection_seconds(events, matchers, start_ts)
    failover = failover_seconds(events, event["ts"] if event else None)
    recovery = recovery_seconds(per_second, end_t, baseline, tolerance=slo.recovery_tolerance,
                                hold=slo.recovery_hold_seconds)
    until = end_t + (recovery if recovery is not None else float("inf"))
    downtime = downtime_seconds(per_second, slo.availability, start_t, until)
    during = [r for r in per_second if start_t <= r["t"] < end_t]
    requests = sum(r["requests"] for r in during)
    errors = sum(r["errors"] for r in during)
    return {"fault_id": fault.id, "failure_mode": fault.failure_mode or fault.kind.replace(".", "_"),
            "detection_seconds": detection, "detected_by": event,
            "failover_seconds": failover, "recovery_seconds": recovery,
            "downtime_seconds": downtime,
            "error_rate_during": round(errors / requests, 6) if requests else None,
            # a load spike's "detection" is the scale-out: spike start -> new replica healthy and routed
            **({"scale_out_delay_seconds": detection} if fault.kind == "load.spike" else {})}
