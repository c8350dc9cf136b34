"""The SimPy engine: a discrete-event run of each simulated year, exact for interactions.

Every (failure mode, instance) is an alternating renewal process; common causes and
bursts are extra events; shared repair crews are ``simpy.Resource``\\ s.  Detection and
failover are single delays drawn in closed form (never probe by probe).  Each state
change updates the system state of :class:`sim.topology.Topology`, which says what
fraction of requests fails hour by hour; the engine integrates it exactly between
changes, so overlapping outages of different groups combine correctly (two regions down,
a crash during a partition, ...), which the fast engine only adds up.

Everything is scheduled as timeouts with callbacks rather than generator processes: the
same semantics at a fraction of the cost.  Random numbers come from per-(mode, location)
streams (:mod:`sim.streams`), drawn in blocks.

By default (``full=False``) failure times are drawn ahead with NumPy and only clusters of
overlapping failures go through SimPy (:mod:`sim.clusters`); ``full=True`` (engine
``simpy-full``) and models with shared repair crews run every event through SimPy.
"""
from __future__ import annotations

from functools import partial

import simpy

from sim import clusters, streams
from sim.burn_rate import BURN_SAMPLE_YEARS, replayed_years, time_to_page
from sim.episodes import ChunkTotals
from sim.quantities import HOURS_PER_MONTH
from sim.topology import Topology, _Sum, tile_year

import numpy as np

YEAR = 8760.0


class _Draws:
    """Scalar draws from a distribution, pulled from NumPy in blocks."""

    __slots__ = ("dist", "rng", "buf", "i")

    def __init__(self, dist, rng) -> None:
        self.dist, self.rng, self.buf, self.i = dist, rng, [], 0

    def __call__(self) -> float:
        if self.i >= len(self.buf):
            self.buf, self.i = self.dist.sample(self.rng, 1024).tolist(), 0
        value = self.buf[self.i]
        self.i += 1
        return value


class _Exp:
    """Exponential draws with a given mean, in blocks."""

    __slots__ = ("mean", "rng", "buf", "i")

    def __init__(self, mean: float, rng) -> None:
        self.mean, self.rng, self.buf, self.i = mean, rng, [], 0

    def __call__(self) -> float:
        if self.i >= len(self.buf):
            self.buf, self.i = (self.rng.standard_exponential(1024) * self.mean).tolist(), 0
        value = self.buf[self.i]
        self.i += 1
        return value


class _ModeDraws:
    """The random draws of one failure mode at one location (its own streams)."""

    def __init__(self, mode, seed: int, chunk: int, location: str) -> None:
        source = f"{mode.name}@{location}"
        rng = lambda purpose: streams.stream(seed, chunk, source, purpose)  # noqa: E731
        self.up = _Exp(1.0 / mode.rate, rng(streams.ARRIVALS)) if mode.rate > 0 else None
        self.gaps = _Draws(mode.gaps, rng(streams.GAPS)) if mode.gaps is not None else None
        self.duration = _Draws(mode.duration, rng(streams.DURATIONS))
        self.recovery = _Draws(mode.recovery, rng(streams.RECOVERY))
        self.detection = _Draws(mode.detection, rng(streams.DETECTION))
        self.failover = _Draws(mode.failover, rng(streams.FAILOVER))
        self.ccf = _Exp(1.0 / mode.ccf_rate, rng(streams.CCF)) if mode.ccf_rate > 0 else None
        self.burst = rng(streams.BURSTS)
        self.scale_out_rng = rng(streams.SCALE_OUT)
        self.uniform = _Draws(_Unit(), self.burst)

    def next_up(self) -> float:
        return self.gaps() if self.gaps is not None else self.up()


class _Unit:
    def sample(self, rng, size):
        return rng.random(size)


class _Year:
    """State, integrator and attribution of one simulated year."""

    def __init__(self, engine: "SimpyEngine", env: simpy.Environment, record_incidents: bool) -> None:
        topo = engine.topo
        self.e, self.env, self.topo = engine, env, topo
        self.state = topo.empty_state()
        self.inst_count = [[0] * s.n for s in topo.slots]
        self.distinct = [0] * len(topo.slots)
        self.region_down = [0] * topo.n_regions
        self.epoch_slot = [0] * len(topo.slots)
        self.epoch_region = [0] * topo.n_regions
        self.group_cause: list = [None] * len(topo.slots)
        self.inst_causes: dict[str, float] = {}
        self.group_causes: dict[str, float] = {}
        self.bad, self.cum = topo.tables(self.state)
        self.last = 0.0
        self.downtime = 0.0
        self.monthly = [0.0] * 12
        self.attribution: dict[str, float] = {}
        self.record = record_incidents
        self.segments: list[tuple[float, float, float]] = []
        self.crews = ({s.index: simpy.Resource(env, s.spec.repair_crews) for s in topo.slots
                       if s.spec.repair_crews} if engine.has_crews else {})

    # -- integration ---------------------------------------------------------------------------
    def _advance(self) -> None:
        """Integrate the current state's failing fraction from the last change to now."""
        now = self.env.now
        a = self.last
        self.last = now
        cum = self.cum
        if cum[24] == 0.0 or now <= a:
            return
        bad = self.bad
        area = _F(bad, cum, now) - _F(bad, cum, a)
        if area <= 0.0:
            return
        minutes = area * 60.0
        self.downtime += minutes
        month = int(a / HOURS_PER_MONTH)
        self.monthly[month if month < 12 else 11] += minutes
        causes = self.group_causes or self.inst_causes
        attribution = self.attribution
        if len(causes) == 1:
            for name in causes:
                attribution[name] = attribution.get(name, 0.0) + minutes
        else:
            total = sum(causes.values())
            for name, w in causes.items():
                attribution[name] = attribution.get(name, 0.0) + minutes * w / total
        if self.record:
            self.segments.append((a, now, area))

    @staticmethod
    def _add(causes: dict, name: str, w: float) -> None:
        causes[name] = causes.get(name, 0.0) + w

    @staticmethod
    def _remove(causes: dict, name: str, w: float) -> None:
        left = causes.get(name, 0.0) - w
        if left > 1e-12:
            causes[name] = left
        else:
            causes.pop(name, None)

    # -- instance events: ev = [name, weight, detected, up, charge, td, group] ------------------
    def instance_down(self, slot: int, inst: int, ev: list) -> None:
        self._advance()
        self.state[slot] += 1                      # down_u
        if ev[1]:
            self._add(self.inst_causes, ev[0], ev[1])
        counts = self.inst_count[slot]
        counts[inst] += 1
        if counts[inst] == 1:
            self.distinct[slot] += 1
            if self.distinct[slot] == self.e.threshold[slot]:
                self._group_down(slot, ev)
        self.bad, self.cum = self.topo.tables(self.state)

    def instance_detected(self, slot: int, ev: list) -> None:
        if ev[3] or ev[2]:
            return
        self._advance()
        ev[2] = True
        self.state[slot] -= 1
        self.state[self.topo.D + slot] += 1
        self.bad, self.cum = self.topo.tables(self.state)
        if self.e.scale_out is not None and self.topo.slots[slot].spec.capacity:
            self.env.timeout(self.e.scale_out_draws[slot]()).callbacks.append(
                lambda _e: self._instance_replaced(slot, ev))

    def _instance_replaced(self, slot: int, ev: list) -> None:
        """Scale-out has replaced a lost instance's capacity (ev[2] = 2: no longer counted)."""
        if ev[3] or ev[2] is not True:
            return
        self._advance()
        ev[2] = 2
        self.state[self.topo.D + slot] -= 1
        self.bad, self.cum = self.topo.tables(self.state)

    def instance_up(self, slot: int, inst: int, ev: list) -> None:
        self._advance()
        ev[3] = True
        if ev[2] is True:
            self.state[self.topo.D + slot] -= 1
        elif not ev[2]:
            self.state[slot] -= 1
        if ev[1]:
            self._remove(self.inst_causes, ev[0], ev[1])
        counts = self.inst_count[slot]
        counts[inst] -= 1
        if counts[inst] == 0:
            self.distinct[slot] -= 1
            if self.distinct[slot] == self.e.threshold[slot] - 1:
                self._group_up(slot)
        self.bad, self.cum = self.topo.tables(self.state)

    # -- group and region transitions ----------------------------------------------------------
    def _group_down(self, slot_index: int, ev: list) -> None:
        topo, e = self.topo, self.e
        slot = topo.slots[slot_index]
        st = self.state
        if ev[6] is None:   # a redundant group lost quorum through overlapping failures
            td = e.slot_detection[slot_index]()
            tf = e.group_failover() if slot.spec.failover else 0.0
            charge, share = ev[4], None
        else:
            td, tf, charge, share = ev[6]
        self.epoch_slot[slot_index] += 1
        weight = topo.weight(slot_index, True, share)
        self.group_cause[slot_index] = (charge, weight)
        self._add(self.group_causes, charge, weight)
        st[topo.G + slot_index] = 1
        if slot.spec.failover:
            r = slot.loc
            self.region_down[r] += 1
            if self.region_down[r] == 1:
                self.epoch_region[r] += 1
                st[topo.R + r] = 1
                epoch = self.epoch_region[r]
                self.env.timeout(td + tf).callbacks.append(lambda _e: self._failed_over(r, epoch))
        else:
            undetected, detected = e.group_shares(slot_index, share)
            st[topo.SH + slot_index] = undetected
            if detected != undetected:   # detection changes nothing otherwise: no event needed
                epoch = self.epoch_slot[slot_index]
                self.env.timeout(td).callbacks.append(
                    lambda _e: self._group_detected(slot_index, epoch, detected))

    def _failed_over(self, r: int, epoch: int) -> None:
        R = self.topo.R
        if self.epoch_region[r] != epoch or self.state[R + r] != 1:
            return
        self._advance()
        self.state[R + r] = 2
        self.bad, self.cum = self.topo.tables(self.state)
        if self.e.scale_out is not None:
            self.env.timeout(self.e.region_scale_out[r]()).callbacks.append(
                lambda _e: self._scaled_out(r, epoch))

    def _scaled_out(self, r: int, epoch: int) -> None:
        """The healthy regions have scaled out for failed-over region r's traffic."""
        if self.epoch_region[r] != epoch or self.state[self.topo.R + r] != 2:
            return
        self._advance()
        self.state[self.topo.SC + r] = 1
        self.bad, self.cum = self.topo.tables(self.state)

    def _group_detected(self, slot_index: int, epoch: int, detected_share: float) -> None:
        topo = self.topo
        if self.epoch_slot[slot_index] != epoch or not self.state[topo.G + slot_index]:
            return
        self._advance()
        self.state[topo.G + slot_index] = 2
        self.state[topo.SH + slot_index] = detected_share
        self.bad, self.cum = topo.tables(self.state)

    def _group_up(self, slot_index: int) -> None:
        topo = self.topo
        slot = topo.slots[slot_index]
        st = self.state
        self.epoch_slot[slot_index] += 1
        st[topo.G + slot_index] = 0
        st[topo.SH + slot_index] = 0.0
        charge, weight = self.group_cause[slot_index]
        self._remove(self.group_causes, charge, weight)
        if slot.spec.failover:
            r = slot.loc
            self.region_down[r] -= 1
            if self.region_down[r] == 0:
                self.epoch_region[r] += 1
                st[topo.R + r] = 0
                st[topo.SC + r] = 0

    def finish(self) -> None:
        self._advance()


def _F(bad, cum, t):
    day = int(t // 24.0)
    rem = t - day * 24.0
    h = int(rem)
    if h > 23:
        h = 23
    return day * cum[24] + cum[h] + (rem - h) * bad[h]


class SimpyEngine:
    """Discrete-event Monte Carlo of a compiled topology."""

    name = "simpy"

    def __init__(self, topo: Topology, seed: int, *, full: bool = False,
                 burn_sample_years: int = BURN_SAMPLE_YEARS) -> None:
        self.topo, self.seed = topo, seed
        self.burn_sample_years = burn_sample_years
        self.names = topo.attribution_names
        self.name_index = {n: i for i, n in enumerate(self.names)}
        self.threshold = [sl.down_threshold for sl in topo.slots]
        self.has_crews = any(sl.spec.repair_crews for sl in topo.slots)
        self.scale_out = topo.scale_out
        self._shares: dict[tuple, tuple[float, float]] = {}
        self.inst_weight = {}
        for mode in topo.modes:
            for s in mode.slots:
                spec = topo.slots[s].spec
                redundant = spec.n - spec.k >= 1
                impact = redundant and (spec.partial or spec.capacity)
                self.inst_weight[(mode.index, s)] = topo.weight(s, False) if impact else 0.0
        # shared repair crews make failure times depend on the system: everything through SimPy
        self.full = full or self.has_crews
        if not self.full:
            self._isolated_tables()

    def _isolated_tables(self) -> None:
        """Table rows of every (mode, slot) episode kind, for isolated failures in closed form."""
        from sim.engine_fast import _Tables

        topo = self.topo
        tables = _Tables(topo)
        shape = (len(topo.modes), len(topo.slots))
        kinds = ("partial", "capacity", "group_u", "group_d", "failing", "failed_over")
        self.isolated_rows = {k: np.zeros(shape, np.int64) for k in kinds}
        from sim.engine_fast import _kinds

        for mode in topo.modes:
            spec = topo.model.groups[mode.group]
            for s in mode.slots:
                for kind in _kinds(spec):
                    share = mode.share if kind.startswith("group") else None
                    self.isolated_rows[kind][mode.index, s] = tables.row(s, kind, share)
        self.bad_tab, self.cum_tab = tables.arrays()
        self.tiled_tab = tile_year(self.bad_tab)
        self.redundant_slot = np.array([sl.n - sl.spec.k >= 1 for sl in topo.slots])
        self.failover_slot = np.array([sl.spec.failover for sl in topo.slots])
        self.attr_self = np.array([self.name_index[m.name] for m in topo.modes])
        self.attr_group = np.array([self.name_index[m.charge_group_loss_to] for m in topo.modes])

    def group_shares(self, slot: int, share) -> tuple[float, float]:
        """Failing share of a slot below k before and after detection (cached)."""
        key = (slot, share)
        hit = self._shares.get(key)
        if hit is None:
            sl = self.topo.slots[slot]
            hit = (self.topo.group_share(sl, share, False), self.topo.group_share(sl, share, True))
            self._shares[key] = hit
        return hit

    def run_chunk(self, chunk: int, years: int, first_year: int = 0) -> ChunkTotals:
        """Years ``first_year .. first_year + years - 1`` of the run, from chunk ``chunk``'s streams."""
        topo = self.topo
        replay = replayed_years(self.burn_sample_years, first_year, years)
        draws = [{s: _ModeDraws(m, self.seed, chunk, topo.slot_location(s)) for s in m.slots}
                 for m in topo.modes]
        self.slot_detection = {
            s.index: _Draws(s.detection, streams.stream(
                self.seed, chunk, f"quorum:{s.group}@{topo.slot_location(s.index)}", streams.DETECTION))
            for s in topo.slots}
        router = topo.model.router
        self.group_failover = _Draws(_Sum(router.failover, router.propagate),
                                     streams.stream(self.seed, chunk, "router", streams.FAILOVER))
        if self.scale_out is not None:
            by_location = {loc: _Draws(self.scale_out, streams.stream(
                self.seed, chunk, f"scale_out@{loc}", streams.SCALE_OUT))
                for loc in {topo.slot_location(s.index) for s in topo.slots} | set(topo.region_names)}
            self.scale_out_draws = {s.index: by_location[topo.slot_location(s.index)] for s in topo.slots}
            self.region_scale_out = [by_location[name] for name in topo.region_names]
        if not self.full:
            return clusters.run_chunk(self, draws, years, replay)
        downtime = np.zeros(years)
        monthly = np.zeros((years, 12))
        attribution = np.zeros(len(self.names))
        failures = np.zeros(len(self.names))
        totals = ChunkTotals(years, downtime, monthly, attribution, failures,
                             burn_years=replay)
        incidents = []
        timelines = self._timelines(draws, years)
        counts = [0] * len(self.names)
        for y in range(years):
            year = self._year(draws, counts, record=y < replay, timelines=timelines, y=y)
            downtime[y] = year.downtime
            monthly[y] = year.monthly
            for name, minutes in year.attribution.items():
                attribution[self.name_index.get(name, 0)] += minutes
            if year.record:
                incidents.extend(_incidents(year.segments))
        failures += np.asarray(counts, dtype=float)
        if incidents:
            d, f, minutes = self.pad_incidents(incidents)
            ttp = time_to_page(d, f, slo=topo.model.slo)
            paged = ~np.isnan(ttp)
            totals.incidents = len(incidents)
            totals.pages = int(paged.sum())
            totals.time_to_page_sum = float(ttp[paged].sum() * 60.0)
            totals.paged_downtime = float(minutes[paged].sum())
        return totals

    # ------------------------------------------------------------------------------------------
    def _renewal_arrays(self, mode, d, years: int, n: int):
        """Failures of every (year, instance) of one slot, drawn ahead with NumPy.

        Without repair crews a failure's timing does not depend on the rest of the system,
        so the renewal (up, down, up, ...) of each instance is drawn as blocks of cycles,
        cumulated, and cut at the year's end.  Returns (year, t, instance, duration, td, tf).
        """
        owners = years * n
        lam_t = mode.rate * YEAR
        cycles = int(lam_t + 6 * lam_t ** 0.5 + 6)
        while True:
            if mode.gaps is not None:
                up = mode.gaps.sample(d.gaps.rng, owners * cycles).reshape(owners, cycles)
            else:
                up = d.up.rng.standard_exponential((owners, cycles)) / mode.rate
            down = (mode.duration.sample(d.duration.rng, owners * cycles)
                    + mode.recovery.sample(d.recovery.rng, owners * cycles)).reshape(owners, cycles)
            fail_at = np.cumsum(up, axis=1)
            fail_at[:, 1:] += np.cumsum(down, axis=1)[:, :-1]
            if (fail_at[:, -1] >= YEAR).all():
                break
            cycles *= 2   # a block too short for some instance: draw longer blocks
        rows, cols = np.nonzero(fail_at < YEAR)
        k = len(rows)
        return (rows // n, fail_at[rows, cols], rows % n, down[rows, cols],
                mode.detection.sample(d.detection.rng, k), mode.failover.sample(d.failover.rng, k))

    def _timelines(self, draws, years: int) -> dict:
        """Per (mode, slot) without shared repair: each year's index bounds and failure lists."""
        out = {}
        for mode, by_slot in zip(self.topo.modes, draws):
            group = self.topo.model.groups[mode.group]
            if mode.rate <= 0 or group.repair_crews:
                continue
            for s in mode.slots:
                year_of, t, inst, dur, td, tf = self._renewal_arrays(mode, by_slot[s], years, group.n)
                bounds = np.searchsorted(year_of, np.arange(years + 1)).tolist()
                out[(mode.index, s)] = (bounds, t.tolist(), inst.tolist(), dur.tolist(),
                                        td.tolist(), tf.tolist())
        return out

    def _year(self, draws, failures, record: bool, timelines: dict, y: int) -> _Year:
        env = simpy.Environment()
        year = _Year(self, env, record)
        topo = self.topo
        for mode, by_slot in zip(topo.modes, draws):
            group = topo.model.groups[mode.group]
            if mode.rate > 0:
                for s in mode.slots:
                    d = by_slot[s]
                    line = timelines.get((mode.index, s))
                    if line is not None:
                        bounds, t, inst, dur, td, tf = line
                        fail_now = self._fail_now
                        for k in range(bounds[y], bounds[y + 1]):
                            env.timeout(t[k]).callbacks.append(
                                partial(fail_now, year, mode, d, s, inst[k], dur[k], td[k], tf[k], failures))
                        continue
                    for inst in range(group.n):
                        first = d.next_up()
                        if first < YEAR:
                            env.timeout(first).callbacks.append(
                                self._fail_cb(year, mode, d, s, inst, failures))
            if mode.ccf_rate > 0:
                for s in mode.slots:
                    d = by_slot[s]
                    first = d.ccf()
                    if first < YEAR:
                        env.timeout(first).callbacks.append(self._ccf_cb(year, mode, d, s, failures))
        env.run(until=YEAR)
        year.finish()
        return year

    def _event(self, mode, d, slot: int, group_level: bool) -> dict:
        td = d.detection()
        group = None
        if self.threshold[slot] == 1 or group_level:
            group = (td, d.failover(), mode.charge_group_loss_to, mode.share)
        return [mode.name, self.inst_weight[(mode.index, slot)], False, False,
                mode.charge_group_loss_to, td, group]

    def _down(self, year: _Year, mode, d, slot: int, inst: int, duration: float, ev: dict, then=None):
        env = year.env
        year.instance_down(slot, inst, ev)
        if ev[1] and ev[5] < duration:
            env.timeout(ev[5]).callbacks.append(lambda _e: year.instance_detected(slot, ev))

        def up(_e=None):
            year.instance_up(slot, inst, ev)
            if then is not None:
                then()

        crews = year.crews.get(slot)
        if crews is None:
            env.timeout(duration).callbacks.append(up)
        else:
            req = crews.request()

            def granted(_e):
                def done(_e2):
                    crews.release(req)
                    up()
                env.timeout(duration).callbacks.append(done)
            req.callbacks.append(granted)

    def _fail_now(self, year: _Year, mode, d, slot: int, inst: int, duration: float, td: float,
                  tf: float, failures, _event=None, *, bursts: bool = True) -> None:
        """A pre-drawn failure happens: the instance goes down for ``duration``."""
        failures[self.name_index[mode.name]] += 1
        charge = mode.charge_group_loss_to
        ev = [mode.name, self.inst_weight[(mode.index, slot)], False, False, charge, td,
              (td, tf, charge, mode.share) if self.threshold[slot] == 1 else None]
        self._down(year, mode, d, slot, inst, duration, ev)
        if bursts and mode.burst_probability:
            self._maybe_burst(year, mode, d, slot, inst, failures)

    def _ccf_now(self, year: _Year, mode, d, slot: int, whole: float, td: float, tf: float,
                 _event=None) -> None:
        """A pre-drawn common cause takes every instance of the slot down."""
        spec = self.topo.slots[slot].spec
        for inst in range(spec.n):
            duration = whole if mode.ccf_restore == "whole" else d.duration() + d.recovery()
            ev = [mode.name, 0.0, False, False, mode.charge_group_loss_to, td,
                  (td, tf, mode.charge_group_loss_to, mode.share)]
            year.instance_down(slot, inst, ev)
            year.env.timeout(duration).callbacks.append(
                lambda _e, i=inst, e=ev: year.instance_up(slot, i, e))

    def new_year(self, record: bool):
        env = simpy.Environment()
        return env, _Year(self, env, record)

    @staticmethod
    def incidents_of(year: "_Year") -> list:
        return _incidents(year.segments)

    @staticmethod
    def pad_incidents(incidents: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = max(len(i) for i in incidents)
        d = np.zeros((len(incidents), width))
        f = np.zeros((len(incidents), width))
        minutes = np.zeros(len(incidents))
        for row, phases in enumerate(incidents):
            for col, (dur, frac) in enumerate(phases):
                d[row, col], f[row, col] = dur, frac
            minutes[row] = sum(dur * frac for dur, frac in phases) * 60.0
        return d, f, minutes

    def _maybe_burst(self, year: _Year, mode, d, slot: int, inst: int, failures) -> None:
        n = self.topo.slots[slot].n
        if n > 1 and d.uniform() < mode.burst_probability:
            for j in range(1, min(mode.burst_extra, n - 1) + 1):
                sibling = (inst + j) % n
                delay = d.uniform() * mode.burst_window
                year.env.timeout(delay).callbacks.append(
                    lambda _e, sib=sibling: self._sibling(year, mode, d, slot, sib, failures))

    def _fail_cb(self, year: _Year, mode, d: _ModeDraws, slot: int, inst: int, failures):
        attr = self.name_index[mode.name]

        def fail(_e):
            failures[attr] += 1
            duration = d.duration() + d.recovery()
            ev = self._event(mode, d, slot, False)

            def next_failure():
                wait = d.next_up()
                if year.env.now + wait < YEAR:
                    year.env.timeout(wait).callbacks.append(fail)
            self._down(year, mode, d, slot, inst, duration, ev, then=next_failure)
            if mode.burst_probability:
                self._maybe_burst(year, mode, d, slot, inst, failures)
        return fail

    def _sibling(self, year: _Year, mode, d, slot: int, inst: int, failures) -> None:
        failures[self.name_index[mode.name]] += 1
        duration = d.duration() + d.recovery()
        self._down(year, mode, d, slot, inst, duration, self._event(mode, d, slot, False))

    def _ccf_cb(self, year: _Year, mode, d: _ModeDraws, slot: int, failures):
        attr = self.name_index[mode.name]
        spec = self.topo.slots[slot].spec

        def ccf(_e):
            failures[attr] += 1
            whole = d.duration() + d.recovery() if mode.ccf_restore == "whole" else None
            td, tf = d.detection(), d.failover()
            for inst in range(spec.n):
                duration = whole if whole is not None else d.duration() + d.recovery()
                ev = [mode.name, 0.0, False, False, mode.charge_group_loss_to, td,
                      (td, tf, mode.charge_group_loss_to, mode.share)]
                year.instance_down(slot, inst, ev)
                year.env.timeout(duration).callbacks.append(
                    lambda _e, i=inst, e=ev: year.instance_up(slot, i, e))
            wait = d.ccf()
            if year.env.now + wait < YEAR:
                year.env.timeout(wait).callbacks.append(ccf)
        return ccf


def _incidents(segments: list[tuple[float, float, float]]) -> list[list[tuple[float, float]]]:
    """Merge contiguous failing segments into incidents of (duration, mean fraction) phases."""
    out: list[list[tuple[float, float]]] = []
    prev_end = None
    for a, b, area in segments:
        phase = (b - a, area / (b - a))
        if prev_end is not None and a == prev_end and out:
            out[-1].append(phase)
        else:
            out.append([phase])
        prev_end = b
    return out
