"""Capacity search: the highest arrival rate a scenario sustains within its p99 SLO.

Steps the open-model rate up geometrically until a step fails (p99 over the SLO, too
many errors or drops, or throughput short of the target), then bisects between the last
good and the first bad rate. A step where the *generator* saturated ends the search with
``generator_limited`` set: the system's capacity is then only known to be above it.

:class:`Search` is the pure decision core (feed it step results, it names the next
rate); :func:`search` drives real runs and writes ``capacity.json`` (``nineslab.capacity/1``)
for the simulation's capacity model.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab.errors import UsageError

SCHEMA = "nineslab.capacity/1"


@dataclass(frozen=True)
class SearchPolicy:
    slo_p99_ms: float
    start_rate: float
    max_error_rate: float = 0.01
    max_rate: float = 100000.0
    factor: float = 1.5
    refine: int = 2
    min_throughput_ratio: float = 0.95

    def __post_init__(self) -> None:
        if self.slo_p99_ms <= 0:
            raise UsageError(f"--slo-p99 must be a positive number of milliseconds, not {self.slo_p99_ms:g}")
        if self.start_rate <= 0:
            raise UsageError(f"--start-rate must be positive, not {self.start_rate:g}")
        if self.factor <= 1:
            raise UsageError(f"--factor must be above 1, not {self.factor:g}")


@dataclass
class Step:
    rate: float
    ok: bool
    valid: bool
    p99_ms: float | None
    error_rate: float
    rps: float
    why: str


def judge_step(policy: SearchPolicy, rate: float, doc: dict[str, Any]) -> Step:
    """Did one load.json document sustain ``rate`` within the SLO?"""
    c = doc["counts"]
    intended = max(1, c["intended"])
    error_rate = (c["error"] + c["dropped"]) / intended
    p99 = doc.get("p99_ms")
    why = ""
    if not doc["valid"]:
        why = "generator saturated: " + "; ".join(doc["generator"]["reasons"])
    elif p99 is None:
        why = "no completed requests"
    elif p99 > policy.slo_p99_ms:
        why = f"p99 {p99:g} ms > SLO {policy.slo_p99_ms:g} ms"
    elif error_rate > policy.max_error_rate:
        why = f"error+drop rate {error_rate:.3f} > {policy.max_error_rate:g}"
    elif doc["rps"] < policy.min_throughput_ratio * rate:
        why = f"throughput {doc['rps']:g}/s short of {rate:g}/s"
    return Step(rate, not why, doc["valid"], p99, round(error_rate, 5), doc["rps"], why or "within SLO")


@dataclass
class Search:
    """Pure: which rate to try next given the steps so far; ``None`` when done."""

    policy: SearchPolicy
    steps: list[Step] = field(default_factory=list)
    good: float | None = None
    bad: float | None = None
    refined: int = 0
    generator_limited: bool = False

    def first(self) -> float:
        return min(self.policy.start_rate, self.policy.max_rate)

    def feed(self, step: Step) -> float | None:
        self.steps.append(step)
        if not step.valid:
            self.generator_limited = True
            return None
        if step.ok:
            self.good = step.rate if self.good is None else max(self.good, step.rate)
        else:
            self.bad = step.rate if self.bad is None else min(self.bad, step.rate)
        if self.bad is None:
            if step.rate >= self.policy.max_rate:
                return None
            return min(self.policy.max_rate, step.rate * self.policy.factor)
        if self.good is None or self.refined >= self.policy.refine:
            return None
        self.refined += 1
        return round((self.good + self.bad) / 2.0, 3)

    def result(self) -> dict[str, Any]:
        if self.generator_limited:
            reason = f"the generator saturated at {self.steps[-1].rate:g}/s; the system sustains at least this"
        elif self.good is None:
            reason = f"even {self.steps[0].rate:g}/s failed: {self.steps[0].why}"
        elif self.bad is None:
            reason = f"every step passed up to the --max-rate {self.policy.max_rate:g}/s"
        else:
            reason = f"knee between {self.good:g}/s and {self.bad:g}/s"
        return {"capacity_rps": self.good or 0.0, "reason": reason, "generator_limited": self.generator_limited,
                "steps": [dataclasses.asdict(s) for s in self.steps]}


def search(policy: SearchPolicy, template: Any, progress: Callable[[str], None] = lambda _: None,
           run_step: Callable[[Any], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Drive real runs (``template`` is a :class:`loadtests.runner.RunConfig`); write capacity.json."""
    from loadtests.runner import run

    run_step = run_step or (lambda cfg: run(cfg, progress=lambda _: None))
    out = Path(template.out)
    out.mkdir(parents=True, exist_ok=True)
    s = Search(policy)
    rate: float | None = s.first()
    while rate is not None:
        cfg = dataclasses.replace(template, rate=rate, out=out / f"step-{len(s.steps) + 1:02d}-{rate:g}")
        progress(f"capacity: trying {rate:g}/s for {template.duration:g} s")
        doc = run_step(cfg)
        if doc["status"] == "interrupted":
            progress("capacity: interrupted")
            break
        step = judge_step(policy, rate, doc)
        progress(f"capacity: {rate:g}/s -> {'ok' if step.ok else 'FAIL'} (p99 {step.p99_ms} ms, "
                 f"errors {step.error_rate:.3%}, {step.rps:g}/s): {step.why}")
        rate = s.feed(step)
    result = {"schema": SCHEMA, "scenario": template.scenario.name, "slo_p99_ms": policy.slo_p99_ms,
              "max_error_rate": policy.max_error_rate, "measured_at": time.time(),
              "step_duration_s": template.duration, **s.result()}
    path = out / "capacity.json"
    path.write_text(json.dumps(result, indent=2))
    result["file"] = str(path)
    return result
