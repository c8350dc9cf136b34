"""The fast engine: whole chunks of years drawn and summed with NumPy, no event loop.

Per failure mode and instance, failures are an alternating renewal process with
exponential up-times: the failures' positions in *up-time* are a Poisson process (count
Poisson(rate x year), positions from normalised exponential spacings), and each one is
shifted to calendar time by the outages before it - exact, and fully vectorised.  Each
failure becomes an episode (:mod:`sim.episodes`) integrated in closed form against the
bad-by-hour tables of :class:`sim.topology.Topology`.  Redundant groups (k < n) are swept
exactly: the times when at least n - k + 1 instances are down become group-loss episodes
(quorum loss, both replicas down).  Common-cause (beta-factor) events and bursts are
drawn as their own episodes.

What it does not do, and the SimPy engine does: shared repair crews, non-exponential
times between failures (``gaps``), and the interaction of *different* groups' outages
that overlap in time (it adds them; the SimPy engine evaluates the combined state).  That
overlap is second order - both engines agree within statistical error on every model
:func:`unsupported` accepts (tested).
"""
from __future__ import annotations

import numpy as np

from sim import streams
from sim.burn_rate import time_to_page
from sim.episodes import ChunkTotals, month_of
from sim.topology import Topology, _Sum, integrate_vec

YEAR = 8760.0
_SEP = 10_000.0  # hours between years on the sweep's time axis
BURN_SAMPLE_YEARS = 2_000


def unsupported(topo: Topology) -> list[str]:
    """Why the fast engine cannot run this model (empty: it can)."""
    reasons = []
    for name, group in topo.model.groups.items():
        if group.repair_crews is not None:
            reasons.append(f"group {name} shares {group.repair_crews} repair crew(s)")
    for mode in topo.modes:
        if mode.gaps is not None:
            reasons.append(f"failure mode {mode.name} has non-exponential gaps")
    return reasons


def _kinds(group, group_level: bool = False) -> tuple[str, ...]:
    """The episode tables a group can need."""
    kinds = ("failing", "failed_over") if group.failover else ("group_u", "group_d")
    if group.n - group.k >= 1 and not group_level:
        kinds += tuple(k for k, on in (("partial", group.partial), ("capacity", group.capacity)) if on)
    return kinds


class _Tables:
    """Registry of bad-by-hour tables; row 0 is 'no impact'."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.rows: dict[tuple, int] = {}
        self.bad = [np.zeros(24)]
        self.cum = [np.zeros(25)]

    def row(self, slot: int, kind: str, share: float | None = None) -> int:
        key = (slot, kind, share)
        if key not in self.rows:
            bad, cum = self.topo.solo_tables(slot, kind, share)
            self.rows[key] = len(self.bad)
            self.bad.append(np.asarray(bad))
            self.cum.append(np.asarray(cum))
        return self.rows[key]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.vstack(self.bad), np.vstack(self.cum)


class FastEngine:
    """Vectorised Monte Carlo of a compiled topology."""

    name = "fast"

    def __init__(self, topo: Topology, seed: int, *, burn_sample_years: int = BURN_SAMPLE_YEARS) -> None:
        reasons = unsupported(topo)
        if reasons:
            raise ValueError("the fast engine cannot run this model: " + "; ".join(reasons))
        self.topo, self.seed = topo, seed
        self.burn_sample_years = burn_sample_years
        self.names = topo.attribution_names
        self.name_index = {n: i for i, n in enumerate(self.names)}
        tables = _Tables(topo)
        self.mode_rows = []
        for mode in topo.modes:
            rows = {}
            for kind in _kinds(topo.model.groups[mode.group]):
                share = mode.share if kind.startswith("group") else None
                rows[kind] = np.array([tables.row(s, kind, share) for s in mode.slots])
            self.mode_rows.append(rows)
        self.slot_rows = {s.index: {k: tables.row(s.index, k) for k in _kinds(s.spec, group_level=True)}
                          for s in topo.slots if s.spec.n - s.spec.k >= 1}
        self.bad, self.cum = tables.arrays()
        self.group_failover = _Sum(topo.model.router.failover, topo.model.router.propagate)
        self.slot_may_double = {s.index: any(m.burst_probability > 0 for m in topo.modes
                                             if m.group == s.group) for s in topo.slots}
        self.overlap_charge = {}
        for slot in topo.slots:
            modes = [m for m in topo.modes if m.group == slot.group]
            if modes:
                self.overlap_charge[slot.index] = self.name_index[modes[0].charge_group_loss_to]

    # ------------------------------------------------------------------------------------------
    def run_chunk(self, chunk: int, years: int) -> ChunkTotals:
        topo = self.topo
        ep = {k: [] for k in ("year", "start", "p1", "p2", "tab1", "tab2", "attr")}
        failures = np.zeros(len(self.names))
        inst_events: dict[int, list] = {}

        def add(year, start, p1, p2, tab1, tab2, attr):
            ep["year"].append(year); ep["start"].append(start); ep["p1"].append(p1)
            ep["p2"].append(p2); ep["tab1"].append(tab1); ep["tab2"].append(tab2)
            ep["attr"].append(np.broadcast_to(attr, year.shape))

        for mode, rows in zip(topo.modes, self.mode_rows):
            group = topo.model.groups[mode.group]
            n = group.n
            redundant = group.n - group.k >= 1
            attr_self = self.name_index[mode.name]
            attr_group = self.name_index[mode.charge_group_loss_to]
            for local, slot in enumerate(mode.slots):
                # one stream per (mode, location): what-ifs on other regions keep these draws
                source = f"{mode.name}@{topo.slot_location(slot)}"
                rng = {p: streams.stream(self.seed, chunk, source, p) for p in
                       (streams.ARRIVALS, streams.DURATIONS, streams.DETECTION, streams.FAILOVER,
                        streams.RECOVERY, streams.BURSTS, streams.CCF)}
                row = {kind: np.asarray(ids[local]) for kind, ids in rows.items()}
                if mode.rate > 0:
                    year, t, inst, dur, td, tf = self._renewal_failures(mode, rng, years, n)
                    if mode.burst_probability > 0 and redundant:
                        year, t, inst, dur, td, tf = self._bursts(mode, rng, year, t, inst, dur, td, tf, n)
                    failures[attr_self] += len(t)
                    if redundant:
                        p1 = np.minimum(td, dur)
                        zero = np.zeros(len(t), np.int64)
                        tab1 = zero + row["partial"] if "partial" in row else zero
                        tab2 = zero + row["capacity"] if "capacity" in row else zero
                        add(year, t, p1, dur - p1, tab1, tab2, attr_self)
                        inst_events.setdefault(slot, []).append((year, t, np.minimum(t + dur, YEAR), inst))
                    else:
                        self._group_episodes(add, group, row, year, t, dur, td, tf, attr_group)
                if mode.ccf_rate > 0:
                    r = rng[streams.CCF]
                    year = np.repeat(np.arange(years), r.poisson(mode.ccf_rate * YEAR, years))
                    m = len(year)
                    t = r.random(m) * YEAR
                    if mode.ccf_restore == "whole":
                        dur = mode.duration.sample(r, m) + mode.recovery.sample(r, m)
                    else:
                        each = (mode.duration.sample(r, m * n) + mode.recovery.sample(r, m * n)).reshape(-1, n)
                        dur = np.sort(each, axis=1)[:, group.k - 1]
                    td = mode.detection.sample(r, m)
                    tf = mode.failover.sample(r, m)
                    failures[attr_self] += m
                    self._group_episodes(add, group, row, year, t, dur, td, tf, attr_group)

        for slot_index, parts in inst_events.items():
            self._overlap_episodes(add, chunk, slot_index, parts)

        if not ep["year"]:
            empty = np.zeros(years)
            return ChunkTotals(years, empty, np.zeros((years, 12)), np.zeros(len(self.names)), failures)
        cat = {k: np.concatenate(v) for k, v in ep.items()}
        return self._totals(years, cat, failures)

    # ------------------------------------------------------------------------------------------
    def _renewal_failures(self, mode, rng, years, n):
        """Failure times of every (year, instance) of one slot: exact alternating renewal."""
        owners = years * n
        cnt = rng[streams.ARRIVALS].poisson(mode.rate * YEAR, owners)
        seg = cnt + 1
        ends = np.cumsum(seg)
        spacing = rng[streams.ARRIVALS].standard_exponential(int(ends[-1]))
        cs = np.cumsum(spacing)
        base = cs[ends - seg] - spacing[ends - seg]
        total = cs[ends - 1] - base
        is_point = np.ones(len(spacing), dtype=bool)
        is_point[ends - 1] = False
        owner = np.repeat(np.arange(owners), cnt)
        up_time = (cs[is_point] - base[owner]) / total[owner] * YEAR
        m = len(owner)
        dur = mode.duration.sample(rng[streams.DURATIONS], m) + mode.recovery.sample(rng[streams.RECOVERY], m)
        excl = np.concatenate([[0.0], np.cumsum(dur)])
        first = (np.cumsum(cnt) - cnt)[owner]
        t = up_time + excl[:-1] - excl[first]
        td = mode.detection.sample(rng[streams.DETECTION], m)
        tf = mode.failover.sample(rng[streams.FAILOVER], m)
        keep = t < YEAR
        owner = owner[keep]
        return owner // n, t[keep], owner % n, dur[keep], td[keep], tf[keep]

    def _bursts(self, mode, rng, year, t, inst, dur, td, tf, n):
        """Ford-style bursts: a failure drags ``extra`` siblings down within the window."""
        r = rng[streams.BURSTS]
        hit = np.flatnonzero(r.random(len(t)) < mode.burst_probability)
        parts = [(year, t, inst, dur, td, tf)]
        for j in range(1, min(mode.burst_extra, n - 1) + 1):
            k = len(hit)
            tj = t[hit] + r.random(k) * mode.burst_window
            dj = mode.duration.sample(r, k) + mode.recovery.sample(r, k)
            parts.append((year[hit], tj, (inst[hit] + j) % n, dj,
                          mode.detection.sample(r, k), mode.failover.sample(r, k)))
        cat = [np.concatenate(p) for p in zip(*parts)]
        keep = cat[1] < YEAR
        return tuple(a[keep] for a in cat)

    @staticmethod
    def _group_episodes(add, group, row, year, t, dur, td, tf, attr):
        zero = np.zeros(len(t), np.int64)
        if group.failover:
            p1 = np.minimum(td + tf, dur)
            add(year, t, p1, dur - p1, zero + row["failing"], zero + row["failed_over"], attr)
        else:
            p1 = np.minimum(td, dur)
            add(year, t, p1, dur - p1, zero + row["group_u"], zero + row["group_d"], attr)

    def _overlap_episodes(self, add, chunk, slot_index, parts):
        """Times when at least n-k+1 distinct instances of a slot are down, swept exactly."""
        slot = self.topo.slots[slot_index]
        year = np.concatenate([p[0] for p in parts])
        if len(year) < 2:
            return
        start = np.concatenate([p[1] for p in parts])
        end = np.concatenate([p[2] for p in parts])
        inst = np.concatenate([p[3] for p in parts])
        if len(parts) > 1 or self.slot_may_double[slot_index]:
            # union of each instance's intervals (an instance down twice is still one instance);
            # one renewal process per instance never overlaps itself, so this is often skipped
            owner = year * slot.n + inst
            order = np.lexsort((start, owner))
            owner, start, end, year = owner[order], start[order], end[order], year[order]
            axis_start, axis_end = start + owner * _SEP, end + owner * _SEP
            run_end = np.maximum.accumulate(axis_end)
            new = np.ones(len(start), dtype=bool)
            new[1:] = axis_start[1:] > run_end[:-1]
            idx = np.flatnonzero(new)
            start, end, year = start[idx], np.maximum.reduceat(end, idx), year[idx]
        # depth sweep: at least threshold instances down (ends first, so ties do not count)
        offset = year * _SEP
        times = np.concatenate([end + offset, start + offset])
        delta = np.concatenate([-np.ones(len(start), np.int64), np.ones(len(start), np.int64)])
        order = np.argsort(times, kind="stable")
        depth = np.cumsum(delta[order])
        times = times[order]
        thr = slot.down_threshold
        prev = np.concatenate([[0], depth[:-1]])
        ups = times[(depth >= thr) & (prev < thr)]
        downs = times[(depth < thr) & (prev >= thr)]
        if len(ups) == 0:
            return
        y = np.floor(ups / _SEP).astype(np.int64)
        t = ups - y * _SEP
        dur = downs - ups
        m = len(ups)
        rng = streams.stream(self.seed, chunk, f"quorum:{slot.group}@{self.topo.slot_location(slot_index)}",
                             streams.DETECTION)
        td = slot.detection.sample(rng, m)
        rows = self.slot_rows[slot_index]
        attr = self.overlap_charge[slot_index]
        if slot.spec.failover:
            p1 = np.minimum(td + self.group_failover.sample(rng, m), dur)
            add(y, t, p1, dur - p1, np.full(m, rows["failing"]), np.full(m, rows["failed_over"]), attr)
        else:
            p1 = np.minimum(td, dur)
            add(y, t, p1, dur - p1, np.full(m, rows["group_u"]), np.full(m, rows["group_d"]), attr)

    def _totals(self, years: int, ep: dict, failures: np.ndarray) -> ChunkTotals:
        start = ep["start"]
        p1 = np.minimum(ep["p1"], YEAR - start)
        p2 = np.clip(np.minimum(ep["p2"], YEAR - start - p1), 0.0, None)
        i1 = integrate_vec(self.bad, self.cum, ep["tab1"], start, start + p1)
        i2 = integrate_vec(self.bad, self.cum, ep["tab2"], start + p1, start + p1 + p2)
        minutes = (i1 + i2) * 60.0
        year = ep["year"]
        downtime = np.bincount(year, minutes, minlength=years)
        monthly = np.bincount(year * 12 + month_of(start), minutes, minlength=years * 12).reshape(years, 12)
        attribution = np.bincount(ep["attr"], minutes, minlength=len(self.names))
        # the alert replay runs on the first burn_sample_years of the chunk (its costliest step)
        sample = min(years, self.burn_sample_years)
        hit = (minutes > 0) & (year < sample)
        totals = ChunkTotals(years, downtime, monthly, attribution, failures, incidents=int(hit.sum()),
                             burn_years=sample)
        if totals.incidents:
            d = np.stack([p1[hit], p2[hit]], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                f = np.where(d > 0, np.stack([i1[hit], i2[hit]], axis=1) / np.where(d > 0, d, 1), 0.0)
            ttp = time_to_page(d, f, slo=self.topo.model.slo)
            paged = ~np.isnan(ttp)
            totals.pages = int(paged.sum())
            totals.time_to_page_sum = float(ttp[paged].sum() * 60.0)
            totals.paged_downtime = float(minutes[hit][paged].sum())
        return totals
