"""The model file: a validated, typed mirror of the topology the simulator runs.

A model (YAML, schema ``nineslab.model/1``, documented in ``docs/simulation.md``) names
the regions with their traffic and capacity, the router's health checks and failover,
redundancy groups (k of n), and failure modes with rates and duration distributions.
:func:`load_model` reads a file, applies ``--set`` overrides and ``--regions``, and
returns a :class:`Model`; every mistake becomes a :class:`lab.errors.ConfigError` (bad
file or value) or :class:`lab.errors.UsageError` (bad ``--set`` key) naming file and key.

Units: durations are ``"5s"``, ``"10m"``, ``"2h"``, ``"30d"`` or bare numbers of hours;
rates are ``"4/yr"``, ``"2/week"`` or bare numbers of events per year (see
:mod:`sim.quantities`).  Internally everything is hours.
"""
from __future__ import annotations

import copy
import difflib
import json
import hashlib
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from lab.errors import ConfigError, UsageError
from sim.distributions import Distribution, Fixed, parse_distribution
from sim.quantities import QuantityError, parse_duration, parse_rate

SCHEMA = "nineslab.model/1"
REFERENCE_MODEL = Path(__file__).with_name("models") / "reference.yaml"


def _duration(value: Any) -> float:
    try:
        return parse_duration(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None


def _rate(value: Any) -> float:
    try:
        return parse_rate(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None


def _distribution(value: Any) -> Distribution | str:
    if isinstance(value, str) and value.strip().lower() in ("router", "group", "none"):
        return value.strip().lower()
    try:
        return parse_distribution(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None


Hours = Annotated[float, BeforeValidator(_duration)]
PerHour = Annotated[float, BeforeValidator(_rate)]
Dist = Annotated[Any, BeforeValidator(_distribution)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=False)


class Region(_Strict):
    """A region: its share of global traffic, its busiest hour and its capacity."""

    traffic_share: float = Field(gt=0)
    peak_hour_utc: float = Field(default=12.0, ge=0, lt=24)
    # capacity as a multiple of this region's own peak-hour traffic
    capacity: float = Field(default=1.5, gt=0)
    source: str | None = None


class Traffic(_Strict):
    # traffic(h) = share * (1 + amplitude * cos(2 pi (h - peak) / 24)), hour by hour
    diurnal_amplitude: float = Field(default=0.0, ge=0, lt=1)
    source: str | None = None


class Router(_Strict):
    """Health-checked regional routing: detection in closed form, then failover."""

    check_interval: Hours = 5 / 3600
    failure_threshold: int = Field(default=3, ge=1)
    timeout: Hours = 1 / 3600
    failover: Dist = Field(default_factory=lambda: Fixed(0.0))    # decide + switch
    propagate: Dist = Field(default_factory=lambda: Fixed(0.0))   # clients re-resolve, reconnect
    source: str | None = None


class Group(_Strict):
    """A redundancy group: ``n`` instances (per region or global), up while ``k`` are up."""

    scope: Literal["region", "global"] = "region"
    n: int = Field(default=1, ge=1)
    k: int = Field(default=1, ge=1)
    # share of the affected requests that fail while the group is below k (after detection)
    share: float = Field(default=1.0, ge=0, le=1)
    # share that fails before the failure is detected (default: share)
    share_undetected: float | None = Field(default=None, ge=0, le=1)
    # below k, the router fails the region over to the others (scope region only)
    failover: bool = False
    # one lost instance fails share_undetected/n of the requests until it is detected
    partial: bool = False
    # instances carry the region's capacity; a lost instance removes 1/n of it once detected
    capacity: bool = False
    # how a redundant group's loss of quorum is detected: router | a distribution
    detection: Dist = Field(default_factory=lambda: Fixed(0.0))
    # failure mode charged with downtime while the group is below k through overlapping failures
    quorum_mode: str | None = None
    # repairers shared by the group's instances (null: every instance repairs independently)
    repair_crews: int | None = Field(default=None, ge=1)
    # the group's losses are demand beyond capacity (load spikes): each lasts at most until
    # autoscaling has scaled out (needs the model's ``autoscaling``)
    scale_out: bool = False
    source: str | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Group":
        if self.k > self.n:
            raise ValueError(f"k={self.k} exceeds n={self.n}")
        if self.failover and self.scope != "region":
            raise ValueError("failover applies to region-scoped groups only")
        return self


class Autoscaling(_Strict):
    """Scale-out: capacity that falls short (a region failed over, a replica lost, a load
    spike) is short only until new replicas are healthy and routed."""

    scale_out_delay: Dist                        # shortage start -> new replica healthy and routed
    # the journals' failure_mode whose scale_out_delay_seconds calibrate the delay
    calibrated_by: str | list[str] = "load-spike"
    source: str | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Autoscaling":
        if isinstance(self.scale_out_delay, str):
            raise ValueError("'scale_out_delay' must be a duration or a distribution")
        return self


class Deploys(_Strict):
    """Change as a failure source: cadence x change-failure rate, per region."""

    per_year: float = Field(gt=0)
    change_failure_rate: float = Field(gt=0, le=1)


class Burst(_Strict):
    """Ford-style correlated bursts: a failure drags ``extra`` siblings down within ``window``."""

    probability: float = Field(ge=0, le=1)
    extra: int = Field(default=1, ge=1)
    window: Hours = 120 / 3600


class FailureMode(_Strict):
    """A way an instance of a group fails: how often, for how long, how it is noticed."""

    group: str
    rate: PerHour | None = None                  # per instance; or give deploys
    deploys: Deploys | None = None
    duration: Dist                               # fault start -> repaired (restart, restore, rollback)
    # time between failures: exponential (default, from rate) or a renewal distribution (SimPy only)
    gaps: Dist | None = None
    detection: Dist | None = None                # router | distribution; default: the group's rule
    failover: Dist | None = None                 # default: router.failover (failover groups)
    recovery: Dist = Field(default_factory=lambda: Fixed(0.0))   # repaired -> SLIs back
    share: float | None = Field(default=None, ge=0, le=1)        # overrides the group's share
    beta: float = Field(default=0.0, ge=0, lt=1)                 # beta-factor common cause
    ccf_restore: Literal["whole", "independent"] = "whole"
    burst: Burst | None = None
    # the journals' failure_mode that calibrates this mode (default: the mode's own name)
    calibrated_by: str | list[str] | None = None
    source: str | None = None

    @pydantic.model_validator(mode="after")
    def _check(self) -> "FailureMode":
        if (self.rate is None) == (self.deploys is None):
            raise ValueError("give exactly one of 'rate' or 'deploys'")
        if isinstance(self.duration, str):
            raise ValueError("'duration' must be a duration or a distribution")
        return self

    @property
    def rate_per_hour(self) -> float:
        if self.deploys is not None:
            return self.deploys.per_year * self.deploys.change_failure_rate / 8760.0
        return float(self.rate)


class Model(_Strict):
    """A whole model file."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=True)

    schema_: Literal["nineslab.model/1"] = Field(default=SCHEMA, alias="schema")
    name: str = "model"
    description: str | None = None
    slo: float = Field(default=0.9999, gt=0, lt=1)
    regions: dict[str, Region]
    traffic: Traffic = Field(default_factory=Traffic)
    router: Router = Field(default_factory=Router)
    groups: dict[str, Group]
    failure_modes: dict[str, FailureMode]
    autoscaling: Autoscaling | None = None       # null: capacity stays short while it lasts
    sources: dict[str, str] = Field(default_factory=dict)

    @pydantic.model_validator(mode="after")
    def _check(self) -> "Model":
        for name, mode in self.failure_modes.items():
            if mode.group not in self.groups:
                raise ValueError(f"failure_modes.{name}.group: unknown group {mode.group!r}"
                                 + _did_you_mean(mode.group, self.groups))
        for name, group in self.groups.items():
            if group.scale_out and self.autoscaling is None:
                raise ValueError(f"groups.{name}.scale_out needs an 'autoscaling' section "
                                 "with a scale_out_delay")
        return self

    @property
    def budget_minutes(self) -> float:
        return round((1.0 - self.slo) * 525_600.0, 6)


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _raw_from_file(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read the model file ({exc.strerror})", path=str(path)) from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(f"not valid YAML ({getattr(exc, 'problem', exc)})", path=str(path),
                          line=None if line is None else line + 1) from exc
    if not isinstance(raw, dict):
        raise ConfigError("a model file must be a YAML mapping with regions, groups and "
                          "failure_modes", path=str(path))
    return raw


def _key_line(text: str, key_path: tuple) -> int | None:
    """Best-effort line number of the last key of ``key_path`` in the YAML text."""
    for part in reversed([p for p in key_path if isinstance(p, str)]):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip().startswith(f"{part}:"):
                return number
    return None


def validate_raw(raw: dict, *, path: str = "<model>", text: str = "") -> Model:
    """Validate a raw mapping into a Model; a failure names the file, line and key."""
    try:
        return Model.model_validate(raw)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(msg, path=path, line=_key_line(text, err["loc"]) if text else None,
                          key=key) from exc


def _resolve_override_key(raw: dict, key: str) -> list[str]:
    """Map ``router.check_interval`` or the shorthand ``region_outage.rate`` to a raw path."""
    parts = key.split(".")
    if parts[0] not in raw:
        for section in ("failure_modes", "groups", "regions"):
            if isinstance(raw.get(section), dict) and parts[0] in raw[section]:
                return [section, *parts]
    return parts


def apply_overrides(raw: dict, overrides: dict[str, str]) -> dict:
    """Return a copy of ``raw`` with ``key=value`` overrides applied (values read as YAML)."""
    raw = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = _resolve_override_key(raw, key)
        node: Any = raw
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                choices = node.keys() if isinstance(node, dict) else []
                raise UsageError(f"unknown --set key {key!r}: no {'.'.join(parts[:depth + 1])!r} in "
                                 f"the model{_did_you_mean(part, choices)}")
            node = node[part]
        if not isinstance(node, dict):
            raise UsageError(f"unknown --set key {key!r}: {'.'.join(parts[:-1])!r} is a value, not a section")
        leaf = parts[-1]
        known = set(node) | _fields_at(parts[:-1])
        if leaf not in known:
            raise UsageError(f"unknown --set key {key!r}{_did_you_mean(leaf, known)}")
        try:
            node[leaf] = yaml.safe_load(value) if isinstance(value, str) else value
        except yaml.YAMLError:
            node[leaf] = value
    return raw


def _fields_at(parts: list[str]) -> set[str]:
    """Field names a pydantic class accepts at a raw path (so --set can add optional keys)."""
    cls: Any = Model
    for part in parts:
        if cls is Model and part in ("regions", "groups", "failure_modes"):
            cls = {"regions": Region, "groups": Group, "failure_modes": FailureMode}[part]
            continue
        if cls in (Region, Group, FailureMode) and parts.index(part) == 1:
            continue  # the name of a region, group or mode
        field = getattr(cls, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None) if field else None
        cls = next((c for c in (Router, Traffic, Autoscaling, Deploys, Burst) if annotation is not None
                    and c.__name__ in str(annotation)), None)
        if cls is None:
            return set()
    return set(getattr(cls, "model_fields", {}))


def select_regions(raw: dict, count: int) -> dict:
    """Keep the first ``count`` regions (what-if ``--regions N``); traffic shares renormalise."""
    regions = raw.get("regions") or {}
    if count < 1 or count > len(regions):
        raise UsageError(f"--regions {count}: the model has {len(regions)} region(s); "
                         f"choose 1..{len(regions)}")
    raw = copy.deepcopy(raw)
    raw["regions"] = dict(list(regions.items())[:count])
    return raw


class LoadedModel:
    """A validated model plus where it came from (file, hash of its text, applied what-ifs)."""

    def __init__(self, model: Model, raw: dict, *, file: str, text_hash: str,
                 overrides: dict[str, str], regions: int | None) -> None:
        self.model, self.raw, self.file, self.hash = model, raw, file, text_hash
        self.overrides, self.regions = dict(overrides), regions


def load_model(path: str | Path | None = None, *, overrides: dict[str, str] | None = None,
               regions: int | None = None) -> LoadedModel:
    """Read, override and validate a model file (default: the reference model)."""
    path = Path(path) if path else REFERENCE_MODEL
    raw = _raw_from_file(path)
    text = path.read_text()
    if raw.get("schema", SCHEMA) != SCHEMA:
        raise ConfigError(f"schema {raw.get('schema')!r} is not {SCHEMA!r}", path=str(path), key="schema")
    effective = apply_overrides(raw, overrides or {})
    if regions is not None:
        effective = select_regions(effective, regions)
    model = validate_raw(effective, path=str(path), text=text)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return LoadedModel(model, effective, file=str(path), text_hash=digest,
                       overrides=overrides or {}, regions=regions)


def model_from_dict(raw: dict, *, name: str = "<inline>") -> LoadedModel:
    """Validate an in-memory model (tests, calibration replicates)."""
    model = validate_raw(raw, path=name)
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return LoadedModel(model, raw, file=name, text_hash=digest, overrides={}, regions=None)


def traffic_profile(model: Model) -> "list[list[float]]":
    """Traffic of each region hour by hour (24 values), in units of the global mean."""
    total = sum(r.traffic_share for r in model.regions.values())
    amp = model.traffic.diurnal_amplitude
    return [[r.traffic_share / total * (1 + amp * math.cos(2 * math.pi * (h + 0.5 - r.peak_hour_utc) / 24))
             for h in range(24)] for r in model.regions.values()]
