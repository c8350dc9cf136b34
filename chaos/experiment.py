"""An experiment: what load to run, what must hold (the steady-state hypothesis), which faults
to inject when, when to give up, what to undo, and which integrity invariants to check.

Experiments are YAML files of schema ``nineslab.experiment/1`` (docs/experiments.md has the
full format and an example). ``load_experiment(path)`` validates one and raises a
``ConfigError`` naming the file, the line and the key of the first problem::

    exp = load_experiment("chaos/experiments/chat-server-crash.yaml")
    exp.faults[0].at, exp.faults[0].duration, exp.faults[0].kind

Times are seconds from the start of the load.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chaos.yaml_source import LineMap, load_yaml_with_lines
from lab.errors import ConfigError

SCHEMA = "nineslab.experiment/1"

FAULT_KINDS = (
    "proxy.toxic",        # a Toxiproxy toxic on one or more links (latency, bandwidth, timeout, ...)
    "proxy.cut",          # links down (listener and open connections closed)
    "proxy.partition",    # a region cut off: every link touching it down
    "process.kill",       # SIGKILL; brought back (started) at the end of the fault
    "process.pause",      # SIGSTOP; continued at the end of the fault
    "process.stop",       # graceful stop; started at the end of the fault
    "process.restart",    # stop and start at once (a deploy); nothing to undo
    "process.data_loss",  # a regional store killed, its data dir destroyed; restored by lab.dr at the end
    "docker.kill", "docker.pause", "docker.stop",         # the docker runtime's equivalents,
    "docker.restart", "docker.disconnect",                # through the docker SDK
    "load.spike",         # marks the load's spike window; the autoscaler's scale-out is measured
)
TOXIC_TYPES = ("latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop")
INVARIANTS = ("chat.no_loss", "analytics.totals", "migration.agreement", "migration.no_lost_writes")
SLI_NAMES = ("availability", "error_rate", "p50_ms", "p95_ms", "p99_ms", "requests")
PHASES = ("before", "during", "after")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=False)


class Tolerance(_Model):
    """Inclusive bounds a probe value must fall in; ``equals`` for exact values."""

    min: float | None = None
    max: float | None = None
    equals: Any = None

    @model_validator(mode="after")
    def _some_bound(self) -> "Tolerance":
        if self.min is None and self.max is None and self.equals is None:
            raise ValueError("give at least one of min, max, equals")
        return self

    def holds(self, value: Any) -> bool:
        if value is None:
            return False
        if self.equals is not None and value != self.equals:
            return False
        try:
            if self.min is not None and float(value) < self.min:
                return False
            if self.max is not None and float(value) > self.max:
                return False
        except (TypeError, ValueError):
            return False
        return True

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.equals is not None:
            parts.append(f"== {self.equals!r}")
        return " and ".join(parts)


class Probe(_Model):
    """One check of the steady-state hypothesis.

    ``sli`` probes read the load generator's samples (over the window of the phase, or a
    sliding ``window_seconds`` during faults); ``http`` probes call a URL; ``sql`` probes run
    a query on one of the lab's PostgreSQL servers and compare its first column.
    """

    name: str
    type: Literal["sli", "http", "sql"] = "sli"
    phases: list[Literal["before", "during", "after"]] = Field(default_factory=lambda: ["before", "after"])
    tolerance: Tolerance
    # sli
    sli: Literal["availability", "error_rate", "p50_ms", "p95_ms", "p99_ms", "requests"] | None = None
    operation: str | None = None          # only samples of this operation (e.g. chat.send)
    window_seconds: float = Field(default=5.0, gt=0)
    # http
    url: str | None = None                # may use {endpoints[NAME]}
    method: str = "GET"
    timeout: float = Field(default=2.0, gt=0)
    # sql
    target: str | None = None             # a postgres process name, e.g. pg-us-east
    database: str = "postgres"
    query: str | None = None
    weight: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _fields_for_type(self) -> "Probe":
        if self.type == "sli" and self.sli is None:
            raise ValueError("an sli probe needs 'sli' (one of " + ", ".join(SLI_NAMES) + ")")
        if self.type == "http" and not self.url:
            raise ValueError("an http probe needs 'url'")
        if self.type == "sql" and not (self.target and self.query):
            raise ValueError("a sql probe needs 'target' and 'query'")
        return self


class Hypothesis(_Model):
    title: str = "the system stays within its SLOs"
    interval_seconds: float = Field(default=1.0, gt=0)   # how often during-probes run live
    probes: list[Probe] = Field(default_factory=list)


class LoadProfile(_Model):
    """Load the engine starts as ``nines load run`` for the whole experiment."""

    scenario: str = "chat"
    rate: float = Field(default=20.0, gt=0)              # arrivals per second (open model)
    duration: float = Field(default=60.0, gt=0)          # seconds
    warmup: float = Field(default=2.0, ge=0)             # seconds left out of the "before" window
    args: list[str] = Field(default_factory=list)        # extra flags for ``nines load run``


class Detection(_Model):
    """Which mechanism event means the system noticed the fault (contracts §5)."""

    kind: Literal["health", "breaker", "failover", "consumer", "migration", "alert", "autoscale"]
    subject: str | None = None            # glob
    state: str | None = None
    source: str | None = None             # glob, e.g. router-*


class FaultExpectation(_Model):
    """What this fault may cost; a fault that costs more makes the verdict deviated."""

    detected: bool | None = None          # must (true) / must not (false) be detected
    detection_within: float | None = Field(default=None, ge=0)
    recovery_within: float | None = Field(default=None, ge=0)
    max_downtime_seconds: float | None = Field(default=None, ge=0)


class Fault(_Model):
    id: str | None = None
    kind: Literal[FAULT_KINDS]  # type: ignore[valid-type]
    target: str | list[str]               # link / process names or globs; ``region:R`` for a region
    at: float = Field(ge=0)
    duration: float = Field(alias="for", ge=0)
    failure_mode: str | None = None       # the simulation's name for what this fault models
    toxic: Literal[TOXIC_TYPES] | None = None  # type: ignore[valid-type]
    attributes: dict[str, float] = Field(default_factory=dict)
    stream: Literal["downstream", "upstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0, le=1)
    detect: Detection | None = None
    expect: FaultExpectation = Field(default_factory=FaultExpectation)

    @property
    def end(self) -> float:
        return self.at + self.duration

    @property
    def targets(self) -> list[str]:
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @model_validator(mode="after")
    def _toxic_needs_type(self) -> "Fault":
        if self.kind == "proxy.toxic" and self.toxic is None:
            raise ValueError("a proxy.toxic fault needs 'toxic' (one of " + ", ".join(TOXIC_TYPES) + ")")
        if self.kind != "proxy.toxic" and self.toxic is not None:
            raise ValueError(f"'toxic' only applies to proxy.toxic faults, not {self.kind}")
        return self


class StopConditions(_Model):
    """Abort (and roll back) when any of these holds while the experiment runs."""

    max_budget_minutes: float | None = Field(default=None, gt=0)
    min_availability: float | None = Field(default=None, ge=0, le=1)
    for_seconds: float = Field(default=10.0, gt=0)       # how long min_availability may be missed


class Action(_Model):
    """A step of the schedule that is not a fault: an HTTP call at ``at`` seconds (e.g. a
    migration phase change under load). A status other than ``expect_status`` deviates."""

    at: float = Field(ge=0)
    kind: Literal["http"] = "http"
    name: str | None = None
    method: str = "POST"
    url: str                              # may use {endpoints[NAME]}
    body: Any = None
    expect_status: int | list[int] | None = 200
    timeout: float = Field(default=60.0, gt=0)


class Rollback(_Model):
    """An extra undo step run after every fault was rolled back (start a process, an HTTP call)."""

    action: Literal["process.start", "process.resume", "proxy.reset", "proxy.restore", "http"]
    target: str | list[str] | None = None
    method: str = "POST"
    url: str | None = None
    body: Any = None

    @model_validator(mode="after")
    def _url_for_http(self) -> "Rollback":
        if self.action == "http" and not self.url:
            raise ValueError("an http rollback needs 'url'")
        return self


class Slo(_Model):
    """How the engine turns samples into downtime and recovery."""

    availability: float = Field(default=0.99, gt=0, le=1)  # a second below this is downtime
    recovery_hold_seconds: float = Field(default=3.0, ge=1)
    recovery_tolerance: float = Field(default=0.01, ge=0, le=1)  # of baseline availability
    settle_seconds: float = Field(default=5.0, ge=0)     # after the last fault, before "after"
    budget_allowance_minutes: float = Field(default=4.38, gt=0)  # scoring: a month's budget


class PathFilter(_Model):
    """Which samples belong to one path of the load: the users of a region, one operation."""

    region: str | None = None
    operation: str | None = None

    @model_validator(mode="after")
    def _some_key(self) -> "PathFilter":
        if self.region is None and self.operation is None:
            raise ValueError("a path needs 'region' or 'operation'")
        return self

    def matches(self, sample: Any) -> bool:
        return ((self.region is None or sample.region == self.region)
                and (self.operation is None or sample.operation == self.operation))


CONTROL_MODES = ("windows", "interleaved", "paths")


class Control(_Model):
    """Kayenta-style judgement of an experiment side against a control side (docs/experiments.md).

    ``windows``: samples inside the fault windows against samples outside them. ``interleaved``:
    every fault toggled on and off in windows of ``window_seconds``; per-second SLIs of the
    on-windows against the off-windows. ``paths``: during the faults, the samples of the
    ``faulted`` path against those of the ``clean`` path of the same load.
    """

    enabled: bool = True
    mode: Literal["windows", "interleaved", "paths"] = "windows"
    min_samples: int = Field(default=50, ge=1)
    metrics: list[Literal["latency_ms", "success", "availability_per_second"]] | None = None
    window_seconds: float | None = Field(default=None, gt=0)   # interleaved: each on and each off window
    skip_seconds: float = Field(default=1.0, ge=0)             # interleaved: left out after each toggle
    clean: PathFilter | None = None                            # paths: the control path
    faulted: PathFilter | None = None                          # paths: the experiment path

    @model_validator(mode="after")
    def _fields_for_mode(self) -> "Control":
        interleaved, paths = self.mode == "interleaved", self.mode == "paths"
        if interleaved and self.window_seconds is None:
            raise ValueError("mode interleaved needs 'window_seconds' (the length of each on and off window)")
        if not interleaved and self.window_seconds is not None:
            raise ValueError(f"'window_seconds' only applies to mode interleaved, not {self.mode}")
        if interleaved and self.skip_seconds + 1 > self.window_seconds:
            raise ValueError(f"skip_seconds {self.skip_seconds:g} leaves no whole second of a "
                             f"{self.window_seconds:g} s window; lower it or lengthen window_seconds")
        if paths and (self.clean is None or self.faulted is None):
            raise ValueError("mode paths needs 'clean' and 'faulted' (e.g. {region: eu-west} and {region: us-east})")
        if not paths and (self.clean is not None or self.faulted is not None):
            raise ValueError(f"'clean' and 'faulted' only apply to mode paths, not {self.mode}")
        if paths and self.clean == self.faulted:
            raise ValueError("the clean and the faulted path select the same samples")
        if self.metrics is None:
            self.metrics = (["availability_per_second", "latency_ms"] if interleaved else ["latency_ms", "success"])
        if interleaved and "success" in self.metrics:
            raise ValueError("mode interleaved judges per-second values: use availability_per_second, not success")
        return self


class Experiment(_Model):
    schema_: Literal["nineslab.experiment/1"] = Field(alias="schema")
    name: str
    title: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    profiles: list[Literal["quick", "full"]] = Field(default_factory=lambda: ["full"])
    weight: float = Field(default=5.0, ge=0, le=10)      # Litmus-style 0..10
    load: LoadProfile = Field(default_factory=LoadProfile)
    hypothesis: Hypothesis = Field(default_factory=Hypothesis)
    faults: list[Fault] = Field(default_factory=list)
    actions: list[Action] = Field(default_factory=list)
    stop: StopConditions = Field(default_factory=StopConditions)
    rollbacks: list[Rollback] = Field(default_factory=list)
    invariants: list[Literal[INVARIANTS]] = Field(default_factory=list)  # type: ignore[valid-type]
    slo: Slo = Field(default_factory=Slo)
    control: Control = Field(default_factory=Control)
    # set by the loader, not the file
    file: str | None = Field(default=None, exclude=True)
    source: dict[str, Any] = Field(default_factory=dict, exclude=True)
    lines: Any = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid name (lower case letters, digits, '.', '_', '-')")
        return value

    @model_validator(mode="after")
    def _faults_fit(self) -> "Experiment":
        for i, fault in enumerate(self.faults):
            if fault.id is None:
                fault.id = f"f{i + 1}"
            if fault.end > self.load.duration:
                raise ValueError(f"faults.{i}: ends at {fault.end:g} s, after the load ends "
                                 f"({self.load.duration:g} s); lengthen load.duration")
        for i, action in enumerate(self.actions):
            if action.at >= self.load.duration:
                raise ValueError(f"actions.{i}: at {action.at:g} s is after the load ends ({self.load.duration:g} s)")
        if self.faults:
            after = self.load.duration - self.last_fault_end - self.slo.settle_seconds
            if after < 1.0:
                raise ValueError(f"load.duration: {self.load.duration:g} s leaves no 'after' window: the last "
                                 f"fault ends at {self.last_fault_end:g} s and slo.settle_seconds is "
                                 f"{self.slo.settle_seconds:g} s; lengthen load.duration to at least "
                                 f"{self.last_fault_end + self.slo.settle_seconds + 1:g}")
        if self.control.enabled and self.control.mode == "interleaved":
            self._interleaving_fits(self.control.window_seconds)
        ids = [f.id for f in self.faults]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"fault ids must be unique, repeated: {', '.join(sorted(dup))}")
        return self

    def _interleaving_fits(self, window: float) -> None:
        if not self.faults:
            raise ValueError("control: mode interleaved toggles the faults, but there are none")
        cycle = 2 * window
        for i, fault in enumerate(self.faults):
            cycles = fault.duration / cycle
            if cycles < 1 or abs(cycles - round(cycles)) > 1e-6:
                raise ValueError(f"faults.{i}.for: {fault.duration:g} s is not a whole number of on/off cycles "
                                 f"of 2 x control.window_seconds = {cycle:g} s; use "
                                 f"{max(1, round(cycles)) * cycle:g}")

    def scaled(self, factor: float) -> "Experiment":
        """The same experiment with its schedule ``factor`` times as long (CI runs the quick suite
        at 0.5): load duration and warmup, fault and action times, settle time and interleaved
        windows. Expectations, probe windows and recovery holds stay: they are the criteria."""
        if factor == 1:
            return self
        if factor <= 0:
            raise ValueError(f"a time scale must be positive, got {factor:g}")
        times = lambda m, **kw: m.model_copy(update={k: v * factor for k, v in kw.items()})  # noqa: E731
        control = self.control
        if control.window_seconds is not None:
            control = times(control, window_seconds=control.window_seconds)
        out = self.model_copy(update={
            "load": times(self.load, duration=self.load.duration, warmup=self.load.warmup),
            "faults": [times(f, at=f.at, duration=f.duration) for f in self.faults],
            "actions": [times(a, at=a.at) for a in self.actions],
            "slo": times(self.slo, settle_seconds=self.slo.settle_seconds),
            "control": control})
        try:
            out._faults_fit()
        except ValueError as exc:
            raise ConfigError(f"at time scale {factor:g}: {exc}", path=self.file) from exc
        return out

    def line_of(self, *path: Any) -> int | None:
        return self.lines.line_of(path) if isinstance(self.lines, LineMap) else None

    @property
    def first_fault_start(self) -> float | None:
        return min((f.at for f in self.faults), default=None)

    @property
    def last_fault_end(self) -> float | None:
        return max((f.end for f in self.faults), default=None)


def _suggest(bad: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(bad, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _translate(exc: ValidationError, path: str, lines: LineMap, model: type[BaseModel]) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    # pydantic adds the union/literal member name to loc; keep only keys and indexes of the data
    data_loc = tuple(p for p in loc if not (isinstance(p, str) and (p.startswith("function-")
                                                                    or p in ("str", "list[str]"))))
    key = ".".join(str(p) for p in data_loc) or None
    msg = err.get("msg", "invalid").removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden" and data_loc:
        bad = str(data_loc[-1])
        allowed = _allowed_keys(model, data_loc[:-1])
        msg = f"unknown key {bad!r}{_suggest(bad, allowed)}"
    elif err.get("type") == "missing":
        msg = "required but missing"
    elif err.get("type") == "literal_error" and "input" in err:
        expected = err.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']+)'", expected)
        msg = f"{err['input']!r} is not allowed, expected one of {expected}{_suggest(str(err['input']), choices)}"
    # "faults.0: ends at ..." from a model validator: point at that item
    # "faults.0.for: ..." from a model validator: point at that item and key
    m = re.match(r"^((?:faults|actions)\.\d+(?:\.[a-z_]+)?|load\.duration|control): ", msg)
    if m:
        data_loc = data_loc + tuple(int(p) if p.isdigit() else p for p in m.group(1).split("."))
        key = ".".join(str(p) for p in data_loc)
        msg = msg[m.end():]
    return ConfigError(msg, path=path, line=lines.line_of(data_loc), key=key)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            field = next((f for f in getattr(current, "model_fields", {}).values() if f.alias == part), None)
        if field is None:
            return []
        ann = field.annotation
        for arg in (getattr(ann, "__args__", None) or (ann,)):
            inner = getattr(arg, "__args__", None)
            candidates = (inner or ()) + (arg,)
            found = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if found:
                current = found
                break
        else:
            return []
    fields = getattr(current, "model_fields", {})
    return [f.alias or n for n, f in fields.items()]


def parse_experiment(text: str, *, path: str = "<string>") -> Experiment:
    data, lines = load_yaml_with_lines(text, path=path)
    if not isinstance(data, dict):
        raise ConfigError("an experiment must be a YAML mapping with schema, name, title, ...", path=path, line=1)
    schema = data.get("schema")
    if schema != SCHEMA:
        raise ConfigError(f"schema must be {SCHEMA!r}, got {schema!r}", path=path,
                          line=lines.line_of(("schema",)), key="schema")
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise _translate(exc, path, lines, Experiment) from exc
    exp.file, exp.source, exp.lines = path, data, lines
    return exp


def load_experiment(path: str | Path) -> Experiment:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("no such experiment file", path=str(p)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the experiment file: {exc.strerror}", path=str(p)) from exc
    return parse_experiment(text, path=str(p))


def library_dir() -> Path:
    """The experiments shipped with nineslab (``chaos/experiments``)."""
    return Path(__file__).resolve().parent / "experiments"


def library(profile: str | None = None) -> list[Experiment]:
    """Every experiment of the library, sorted by name; only those of ``profile`` if given."""
    exps = [load_experiment(p) for p in sorted(library_dir().glob("*.yaml"))]
    if profile:
        exps = [e for e in exps if profile in e.profiles]
    return sorted(exps, key=lambda e: e.name)


def resolve(name_or_path: str) -> Path:
    """A file path, or the name of a library experiment."""
    p = Path(name_or_path)
    if p.exists() or p.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return p
    candidate = library_dir() / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    names = sorted(q.stem for q in library_dir().glob("*.yaml"))
    from lab.errors import UsageError
    raise UsageError(f"no experiment file or library experiment named {name_or_path!r}{_suggest(name_or_path, names)}")
