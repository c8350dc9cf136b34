"""The compiled topology: what fraction of requests fails in a given system state.

Both engines share this one definition of "how bad is it", so that they differ only in
how they produce the timeline of states (the SimPy engine by processes, the fast engine
by vectorised draws).  A *slot* is a redundancy group at one location (a region, or
global).  The state of the system is, per slot, how many instances are down and not yet
detected (``down_u``), down and detected (``down_d``), whether the group is below k
(``gphase`` 0 ok, 1 undetected, 2 detected) with the share of requests that then fail,
and per region whether the router is failing it over (``rphase`` 0 ok, 1 traffic lost,
2 failed over), kept in one flat list (see :meth:`Topology.empty_state`).  :meth:`Topology.bad_by_hour` maps a state to the failing fraction of all
requests for each hour of the day, at that hour's traffic:

* a failing region loses all its requests; a failed-over region's traffic moves to the
  healthy regions in proportion to their capacity, and a region serves at most its
  capacity (an overloaded region fails the excess);
* a non-failover group below k fails its share of its region's (or, global, of every
  region's) requests; a lost instance of a ``partial`` group fails share/n until detected;
  a detected lost instance of a ``capacity`` group removes 1/n of its region's capacity;
* independent partial losses in a region combine as 1 - prod(1 - share).

Downtime minutes are the integral of that fraction over time (request-weighted).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from sim.distributions import Distribution, Fixed, HealthCheckDetection
from sim.model import FailureMode, Group, Model, traffic_profile


@dataclasses.dataclass
class Slot:
    index: int
    group: str
    loc: int            # region index, or -1 for a global group
    spec: Group
    detection: Distribution

    @property
    def n(self) -> int:
        return self.spec.n

    @property
    def down_threshold(self) -> int:
        """Instances down at which the group is below k."""
        return self.spec.n - self.spec.k + 1


@dataclasses.dataclass
class Mode:
    """A failure mode compiled for the engines (rates per hour, distributions in hours)."""

    index: int
    name: str
    group: str
    slots: list[int]
    rate: float                 # per instance per hour, independent part (1 - beta) * lambda
    ccf_rate: float             # per slot per hour, beta * lambda
    duration: Distribution
    recovery: Distribution
    detection: Distribution
    failover: Distribution      # decide + switch + propagate (failover groups), else 0
    share: float | None
    ccf_restore: str
    burst_probability: float
    burst_extra: int
    burst_window: float
    gaps: Distribution | None
    charge_group_loss_to: str   # attribution of group-below-k time caused by this mode


class _Sum(Distribution):
    """Sum of two independent durations (failover + propagation)."""

    def __init__(self, a: Distribution, b: Distribution) -> None:
        self.a, self.b = a, b

    def sample(self, rng, size):
        return self.a.sample(rng, size) + self.b.sample(rng, size)

    @property
    def mean(self):
        return self.a.mean + self.b.mean

    def scaled(self, factor):
        return _Sum(self.a.scaled(factor), self.b.scaled(factor))

    def describe(self):
        return {"dist": "sum", "parts": [self.a.describe(), self.b.describe()]}


class _Min(Distribution):
    """The shorter of two independent durations (a load spike ends, or scale-out completes)."""

    def __init__(self, a: Distribution, b: Distribution) -> None:
        self.a, self.b = a, b

    def sample(self, rng, size):
        return np.minimum(self.a.sample(rng, size), self.b.sample(rng, size))

    @property
    def mean(self):  # not in closed form for every pair: a Monte Carlo estimate
        return float(self.sample(np.random.default_rng(0), 100_000).mean())

    def scaled(self, factor):
        return _Min(self.a.scaled(factor), self.b.scaled(factor))

    def describe(self):
        return {"dist": "min", "parts": [self.a.describe(), self.b.describe()]}


class Topology:
    """A model compiled for simulation: slots, modes, traffic, and the bad-fraction map."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.region_names = list(model.regions)
        self.n_regions = len(self.region_names)
        self.traffic = np.array(traffic_profile(model))                 # (R, 24)
        self.total_traffic = self.traffic.sum(axis=0)                   # (24,)
        caps = np.array([r.capacity for r in model.regions.values()])
        self.capacity = caps * self.traffic.max(axis=1)                 # (R,)
        # autoscaling: a capacity shortage lasts at most the scale-out delay (None: while it lasts)
        self.scale_out = model.autoscaling.scale_out_delay if model.autoscaling else None
        self.router_detection = HealthCheckDetection(
            model.router.check_interval, model.router.failure_threshold, model.router.timeout)
        self.slots: list[Slot] = []
        self.slots_of_group: dict[str, list[int]] = {}
        for gname, group in model.groups.items():
            locs = range(self.n_regions) if group.scope == "region" else [-1]
            for loc in locs:
                slot = Slot(len(self.slots), gname, loc, group, self._resolve(group.detection))
                self.slots.append(slot)
                self.slots_of_group.setdefault(gname, []).append(slot.index)
        self.modes: list[Mode] = []
        for name in sorted(model.failure_modes):
            self.modes.append(self._compile_mode(len(self.modes), name, model.failure_modes[name]))
        self.attribution_names = sorted({m.name for m in self.modes}
                                        | {m.charge_group_loss_to for m in self.modes})
        self._cache: dict[tuple, tuple[list[float], list[float]]] = {}
        S = len(self.slots)
        self.U, self.D, self.G, self.SH, self.R = 0, S, 2 * S, 3 * S, 4 * S
        self.SC = 4 * S + self.n_regions
        self._weights: dict[tuple, float] = {}

    def slot_location(self, slot_index: int) -> str:
        loc = self.slots[slot_index].loc
        return self.region_names[loc] if loc >= 0 else "global"

    # -- compilation ---------------------------------------------------------------------------
    def _resolve(self, detection) -> Distribution:
        if detection is None or detection == "none":
            return Fixed(0.0)
        if detection == "router":
            return self.router_detection
        return detection

    def _compile_mode(self, index: int, name: str, spec: FailureMode) -> Mode:
        group = self.model.groups[spec.group]
        lam = spec.rate_per_hour
        detection = (self._resolve(spec.detection) if spec.detection not in (None, "group")
                     else self._resolve(group.detection))
        if group.failover:
            failover = _Sum(spec.failover if isinstance(spec.failover, Distribution)
                            else self.model.router.failover, self.model.router.propagate)
        else:
            failover = Fixed(0.0)
        redundant = group.n - group.k >= 1
        return Mode(
            index=index, name=name, group=spec.group, slots=list(self.slots_of_group[spec.group]),
            rate=(1.0 - spec.beta) * lam, ccf_rate=spec.beta * lam,
            duration=_Min(spec.duration, self.scale_out) if group.scale_out else spec.duration,
            recovery=spec.recovery, detection=detection, failover=failover, share=spec.share,
            ccf_restore=spec.ccf_restore,
            burst_probability=spec.burst.probability if spec.burst else 0.0,
            burst_extra=spec.burst.extra if spec.burst else 0,
            burst_window=spec.burst.window if spec.burst else 0.0,
            gaps=spec.gaps,
            charge_group_loss_to=(group.quorum_mode or name) if redundant else name)

    # -- the bad-fraction map ------------------------------------------------------------------
    # The state is one flat list (cheap to copy into a cache key): per slot s, down_u at
    # U+s, down_d at D+s, gphase at G+s, gshare at SH+s; per region r, rphase at R+r and
    # at SC+r whether the others have scaled out for its failed-over traffic.
    def empty_state(self) -> list:
        S = len(self.slots)
        return [0] * (2 * S) + [0] * S + [0.0] * S + [0] * (2 * self.n_regions)

    def tables(self, state: list) -> tuple[list[float], list[float]]:
        """(bad fraction by hour, cumulative integral at each hour 0..24) of a state, cached."""
        key = tuple(state)
        hit = self._cache.get(key)
        if hit is None:
            bad = self.bad_by_hour(state)
            cum = np.concatenate([[0.0], np.cumsum(bad)])
            hit = (bad.tolist(), cum.tolist())
            self._cache[key] = hit
        return hit

    def bad_by_hour(self, state: list) -> np.ndarray:
        """Fraction of all requests failing, for each hour of the day, in ``state``."""
        R = self.n_regions
        keep = np.ones((R, 24))            # product of (1 - partial share) per region
        capfactor = np.ones(R)
        U, D, G, SH = self.U, self.D, self.G, self.SH
        for slot in self.slots:
            s = slot.index
            spec = slot.spec
            f = 0.0
            if state[G + s] and not spec.failover:
                f = state[SH + s]
            elif state[G + s] == 0:
                if spec.partial and state[U + s]:
                    su = spec.share if spec.share_undetected is None else spec.share_undetected
                    f = su * state[U + s] / spec.n
                if spec.capacity and state[D + s]:
                    frac = max(spec.n - state[D + s], 0) / spec.n
                    if slot.loc >= 0:
                        capfactor[slot.loc] *= frac
                    else:
                        capfactor *= frac
            if f:
                if slot.loc >= 0:
                    keep[slot.loc] *= 1.0 - f
                else:
                    keep *= 1.0 - f
        rphase = state[self.R:self.R + R]
        scaled = state[self.SC:self.SC + R]
        bad = np.zeros(24)
        healthy = [r for r in range(R) if rphase[r] == 0]
        moved = np.zeros(24)           # failed-over traffic the healthy regions must absorb
        absorbed = np.zeros(24)        # failed-over traffic they have scaled out for
        for r in range(R):
            if rphase[r] == 1:
                bad += self.traffic[r]
            elif rphase[r] == 2:
                if scaled[r]:
                    absorbed += self.traffic[r]
                else:
                    moved += self.traffic[r]
        if healthy:
            cap = self.capacity[healthy] * capfactor[healthy]
            weights = cap / cap.sum() if cap.sum() > 0 else np.full(len(healthy), 1 / len(healthy))
            for j, r in enumerate(healthy):
                load = self.traffic[r] + moved * weights[j]
                excess = np.maximum(load - cap[j], 0.0)
                bad += excess + (load - excess + absorbed * weights[j]) * (1.0 - keep[r])
        else:
            bad += moved + absorbed
        return np.minimum(bad / self.total_traffic, 1.0)

    # -- solo episodes (the fast engine's closed forms, built from the same map) ---------------
    def group_share(self, slot: Slot, mode_share: float | None, detected: bool) -> float:
        spec = slot.spec
        if mode_share is not None:
            return mode_share
        if detected or spec.share_undetected is None:
            return spec.share
        return spec.share_undetected

    def solo_tables(self, slot_index: int, kind: str, mode_share: float | None = None):
        """Bad-by-hour of one slot alone in a given condition.

        kind: ``partial`` (one instance down, undetected), ``capacity`` (one instance down,
        detected), ``group_u``/``group_d`` (group below k, before/after detection), ``failing``
        / ``failed_over`` (a failover group below k, before/after the router moved traffic).
        """
        slot = self.slots[slot_index]
        state = self.empty_state()
        s = slot_index
        if kind == "partial":
            state[self.U + s] = 1
        elif kind == "capacity":
            state[self.D + s] = 1
        elif kind in ("group_u", "group_d"):
            state[self.G + s] = 1 if kind == "group_u" else 2
            state[self.SH + s] = self.group_share(slot, mode_share, kind == "group_d")
        elif kind in ("failing", "failed_over"):
            state[self.G + s] = 1
            state[self.R + slot.loc] = 1 if kind == "failing" else 2
        else:  # pragma: no cover - programming error
            raise ValueError(kind)
        return self.tables(state)

    def weight(self, slot_index: int, group_level: bool, mode_share: float | None = None) -> float:
        """Mean solo bad fraction, used to split overlapping downtime between causes."""
        key = (slot_index, group_level, mode_share)
        if key in self._weights:
            return self._weights[key]
        slot = self.slots[slot_index]
        if group_level:
            kind = "failing" if slot.spec.failover else "group_d"
        else:
            kind = "partial" if slot.spec.partial else "capacity"
        bad, _ = self.solo_tables(slot_index, kind, mode_share)
        self._weights[key] = max(sum(bad) / 24.0, 1e-9)
        return self._weights[key]


def integrate(bad: list[float], cum: list[float], a: float, b: float) -> float:
    """Integral (hours x fraction) of an hour-of-day profile from time a to b (hours)."""
    return _F(bad, cum, b) - _F(bad, cum, a)


def _F(bad, cum, t: float) -> float:
    day = math.floor(t / 24.0)
    rem = t - day * 24.0
    h = int(rem)
    if h >= 24:
        h = 23
    return day * cum[24] + cum[h] + (rem - h) * bad[h]


HOURS_TILED = 8784   # 366 days: bad-by-hour tables repeated over a year (no hour-of-day modulo)


def tile_year(bad: np.ndarray) -> np.ndarray:
    """Bad-by-hour tables (T, 24) repeated for every hour of a year, for :func:`integrate_vec`."""
    return np.tile(bad, (1, HOURS_TILED // 24))


def integrate_vec(bad: np.ndarray, cum: np.ndarray, table: np.ndarray,
                  a: np.ndarray, b: np.ndarray, tiled: np.ndarray | None = None) -> np.ndarray:
    """Vectorised :func:`integrate`: ``bad`` (T, 24), ``cum`` (T, 25), ``table`` indexes rows
    (an array, or one row for every interval); ``tiled`` is ``tile_year(bad)``, optional."""
    scalar = np.ndim(table) == 0
    if scalar and cum[table, 24] == 0.0:
        return np.zeros(len(a))
    bad_flat, cum_flat = bad.ravel(), cum.ravel()
    hour_a = np.floor(a)
    # most outages begin and end inside one clock hour: one table lookup, no cumulative sums
    same = np.floor(b) == hour_a
    if tiled is not None:
        out = (b - a) * tiled.ravel().take(table * HOURS_TILED + hour_a.astype(np.int64))
    else:
        out = (b - a) * bad_flat.take(table * 24 + (hour_a.astype(np.int64) % 24))
    cross = np.flatnonzero(~same)
    if len(cross):
        t, ac, bc = (table if scalar else table[cross]), a[cross], b[cross]
        row_bad, row_cum = t * 24, t * 25
        per_day = cum_flat.take(row_cum + 24)
        out[cross] = (_F_vec(bad_flat, cum_flat, row_bad, row_cum, per_day, bc)
                      - _F_vec(bad_flat, cum_flat, row_bad, row_cum, per_day, ac))
    return out


def _F_vec(bad_flat, cum_flat, row_bad, row_cum, per_day, t):
    day = np.floor(t * (1.0 / 24.0))
    rem = t - day * 24.0
    h = rem.astype(np.int64)
    np.minimum(h, 23, out=h)
    return day * per_day + cum_flat.take(row_cum + h) + (rem - h) * bad_flat.take(row_bad + h)
