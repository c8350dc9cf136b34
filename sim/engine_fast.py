"""The fast engine: whole chunks of years drawn and summed with NumPy, no event loop.

Per failure mode and instance, failures are an alternating renewal process with
exponential up-times: the failures' positions in *up-time* are a Poisson process (count
Poisson(rate x year), positions from normalised exponential spacings), and each one is
shifted to calendar time by the outages before it - exact, and fully vectorised.  Each
failure becomes an episode (:mod:`sim.episodes`) integrated in closed form against the
bad-by-hour tables of :class:`sim.topology.Topology`.  Redundant groups (k < n) are swept
exactly: the times when at least n - k + 1 instances are down become group-loss episodes
(quorum loss, both replicas down).  Common-cause (beta-factor) events and bursts are
drawn as their own episodes.  With ``compiled=True`` (long runs, :mod:`sim.montecarlo`) the
arithmetic after the draws runs in Numba kernels (:mod:`sim.kernels`) - the same numbers.

What it does not do, and the SimPy engine does: shared repair crews, non-exponential
times between failures (``gaps``), and the interaction of *different* groups' outages
that overlap in time (it adds them; the SimPy engine evaluates the combined state).  That
overlap is second order - both engines agree within statistical error on every model
:func:`unsupported` accepts (tested).
"""
from __future__ import annotations

import numpy as np

from sim import streams
from sim.burn_rate import BURN_SAMPLE_YEARS, replayed_years, time_to_page
from sim.distributions import Fixed
from sim.episodes import ChunkTotals, month_of
from sim.topology import Topology, _Sum, integrate_vec, tile_year

YEAR = 8760.0
_SEP = 10_000.0  # hours between years on the sweep's time axis


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
    """Registry of bad-by-hour tables; row 0 is 'no impact', and so is every table that fails
    no request (a failed-over region or a lost replica with capacity to spare): a phase on
    row 0 needs no draws (:meth:`FastEngine._short`).  Equal tables share a row, so two
    phases on one row are one condition: where they split does not change a minute."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.rows: dict[tuple, int] = {}
        self.by_content: dict[bytes, int] = {}
        self.bad = [np.zeros(24)]
        self.cum = [np.zeros(25)]

    def row(self, slot: int, kind: str, share: float | None = None) -> int:
        key = (slot, kind, share)
        if key not in self.rows:
            bad, cum = self.topo.solo_tables(slot, kind, share)
            if not np.any(bad):
                self.rows[key] = 0
                return 0
            content = np.asarray(bad, dtype=np.float64).tobytes() + np.asarray(cum, dtype=np.float64).tobytes()
            if content not in self.by_content:
                self.by_content[content] = len(self.bad)
                self.bad.append(np.asarray(bad))
                self.cum.append(np.asarray(cum))
            self.rows[key] = self.by_content[content]
        return self.rows[key]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.vstack(self.bad), np.vstack(self.cum)


class FastEngine:
    """Vectorised Monte Carlo of a compiled topology."""

    name = "fast"

    def __init__(self, topo: Topology, seed: int, *, burn_sample_years: int = BURN_SAMPLE_YEARS,
                 compiled: bool = False) -> None:
        reasons = unsupported(topo)
        if reasons:
            raise ValueError("the fast engine cannot run this model: " + "; ".join(reasons))
        self.topo, self.seed = topo, seed
        # Numba's kernels for the arithmetic after the draws (sim.kernels; None when Numba is
        # missing or broken): the same numbers as the NumPy path, ~1.5x faster once loaded
        self.kernels = None
        if compiled:
            from sim import kernels
            self.kernels = kernels.load()
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
        self.tiled = tile_year(self.bad)
        self.group_failover = _Sum(topo.model.router.failover, topo.model.router.propagate)
        self.slot_may_double = {s.index: any(m.burst_probability > 0 for m in topo.modes
                                             if m.group == s.group) for s in topo.slots}
        # the (source, purpose) streams the last chunk used: the next chunk makes them back to
        # back before its array work (seeding ~100 generators between large array passes, with
        # cold caches, took ~2x as long); the same generators, so the same draws
        self.stream_keys: set[tuple[str, int]] = set()
        self.overlap_charge = {}
        for slot in topo.slots:
            modes = [m for m in topo.modes if m.group == slot.group]
            if modes:
                self.overlap_charge[slot.index] = self.name_index[modes[0].charge_group_loss_to]

    # ------------------------------------------------------------------------------------------
    def run_chunk(self, chunk: int, years: int, first_year: int = 0) -> ChunkTotals:
        """Years ``first_year .. first_year + years - 1`` of the run, from chunk ``chunk``'s streams."""
        topo = self.topo
        made = {key: streams.stream(self.seed, chunk, *key) for key in self.stream_keys}
        self.stream_keys = set()
        acc = _Chunk(self, years, replayed_years(self.burn_sample_years, first_year, years))
        add = acc.add
        failures = acc.failures
        inst_events: dict[int, list] = {}

        for mode, rows in zip(topo.modes, self.mode_rows):
            group = topo.model.groups[mode.group]
            n = group.n
            redundant = group.n - group.k >= 1
            attr_self = self.name_index[mode.name]
            attr_group = self.name_index[mode.charge_group_loss_to]
            for local, slot in enumerate(mode.slots):
                # one stream per (mode, location): what-ifs on other regions keep these draws
                rng = _Streams(self, chunk, f"{mode.name}@{topo.slot_location(slot)}", made)
                row = {kind: int(ids[local]) for kind, ids in rows.items()}
                if mode.rate > 0:
                    year, t, inst, dur, late = self._renewal_failures(mode, rng, years, n)
                    if mode.burst_probability > 0 and redundant:
                        year, t, inst, dur = self._bursts(mode, rng[streams.BURSTS], year, t, inst, dur, n)
                        late = 0
                    failures[attr_self] += len(t) - late
                    # both phases on one table (detection changes nothing, as for a bad
                    # release or a profiles database down): the detection delay moves no minute,
                    # and only the alert replay, which sees the phases, needs it
                    lag_moves_nothing = (not redundant and not group.failover and not acc.sample
                                         and row["group_u"] == row["group_d"])
                    td = 0.0 if lag_moves_nothing else _draw(mode.detection, rng, streams.DETECTION, len(t))
                    if redundant:
                        short = self._short(rng, len(t), row.get("capacity", 0))
                        add(year, t, dur, td, short, row.get("partial", 0), row.get("capacity", 0), attr_self)
                        inst_events.setdefault(slot, []).append((year, t, np.minimum(t + dur, YEAR), inst))
                    else:
                        tf = _draw(mode.failover, rng, streams.FAILOVER, len(t))
                        self._group_episodes(add, group, row, year, t, dur, td, tf, attr_group, rng)
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
                    self._group_episodes(add, group, row, year, t, dur, td, tf, attr_group, rng)

        for slot_index, parts in inst_events.items():
            self._overlap_episodes(add, chunk, slot_index, parts, years, made)
        return acc.totals()

    # ------------------------------------------------------------------------------------------
    def _renewal_failures(self, mode, rng, years, n):
        """Failure times of every (year, instance) of one slot: exact alternating renewal.

        Up-times are exponential, so the failures' positions in *up-time* are a Poisson
        process; drawn on the owners' (year x instance) up-time axes laid end to end, one
        exponential spacing per failure.  Each failure is then shifted to calendar time by
        the outages before it in its own year and instance.  A failure shifted past the
        year's end did not happen; rather than compacting every array to drop these few,
        they stay as *late* placeholders at the year's end with no duration (no downtime,
        no overlap) and are left out of the failure count (returned last).
        """
        owners = years * n
        r = rng[streams.ARRIVALS]
        # positions in mean up-times: an owner's year spans rate x YEAR of them
        per_owner = mode.rate * YEAR
        span = owners * per_owner
        cumsum = self.kernels.cumsum if self.kernels is not None else lambda x: np.cumsum(x, dtype=np.float64)
        spacings = lambda k: cumsum(r.standard_exponential(k, dtype=np.float32))  # noqa: E731
        pos = spacings(int(span + 6 * span ** 0.5 + 16))
        while pos[-1] < span:  # rare: more failures than the block holds
            pos = np.concatenate([pos, spacings(max(len(pos) // 4, 16)) + pos[-1]])
        pos = pos[:np.searchsorted(pos, span)]
        m = len(pos)
        dur = np.asarray(mode.duration.sample(rng[streams.DURATIONS], m), dtype=np.float64)
        if mode.recovery != Fixed(0.0):
            dur += _draw(mode.recovery, rng, streams.RECOVERY, m)
        if self.kernels is not None:
            year, inst, t, n_late = self.kernels.renewal_times(pos, 1.0 / per_owner, owners, n, dur)
            return year, t, inst, dur, n_late
        pos *= 1.0 / per_owner
        owner = pos.astype(np.int64)
        np.minimum(owner, owners - 1, out=owner)
        t = pos - owner
        t *= YEAR                                   # up-time hours into the owner's year
        # outages before each failure in its own owner: running sum minus the owner's start
        before = np.cumsum(dur)
        before -= dur
        first = np.empty(m, dtype=bool)
        first[:1] = True
        np.not_equal(owner[1:], owner[:-1], out=first[1:])
        t += before
        t -= np.maximum.accumulate(before * first)  # before >= 0: times the mask is where()
        late = t >= YEAR
        n_late = int(np.count_nonzero(late))
        if n_late:
            t[late], dur[late] = YEAR, 0.0
        if n == 1:
            return owner, t, np.zeros(m, np.int64), dur, n_late
        year, inst = np.divmod(owner, n)
        return year, t, inst, dur, n_late

    def _bursts(self, mode, r, year, t, inst, dur, n):
        """Ford-style bursts: a failure drags ``extra`` siblings down within the window."""
        hit = np.flatnonzero(r.random(len(t)) < mode.burst_probability)
        parts = [(year, t, inst, dur)]
        for j in range(1, min(mode.burst_extra, n - 1) + 1):
            k = len(hit)
            tj = t[hit] + r.random(k) * mode.burst_window
            dj = mode.duration.sample(r, k) + mode.recovery.sample(r, k)
            parts.append((year[hit], tj, (inst[hit] + j) % n, dj))
        # failures at or past the year's end are left out: each part filtered before the
        # concatenation (the renewal's few late placeholders, the siblings dragged past it)
        for index, part in enumerate(parts):
            keep = part[1] < YEAR
            if not keep.all():
                parts[index] = tuple(a[keep] for a in part)
        return tuple(np.concatenate(p) for p in zip(*parts))

    def _short(self, rng, size, row: int):
        """A capacity shortage lasts at most the scale-out delay (with autoscaling): after it
        the one-failure tables (failed over, a replica lost) fail no request.  None: no limit,
        or a shortage on ``row`` 0 that fails no request anyway (its delays would not matter:
        none are drawn)."""
        if self.topo.scale_out is None or row == 0:
            return None
        return _draw(self.topo.scale_out, rng, streams.SCALE_OUT, size)

    def _group_episodes(self, add, group, row, year, t, dur, td, tf, attr, rng):
        if group.failover:
            short = self._short(rng, len(t), row["failed_over"])
            add(year, t, dur, td + tf, short, row["failing"], row["failed_over"], attr)
        else:
            add(year, t, dur, td, None, row["group_u"], row["group_d"], attr)

    def _overlap_episodes(self, add, chunk, slot_index, parts, years, made):
        """Times when at least n-k+1 distinct instances of a slot are down, swept exactly."""
        slot = self.topo.slots[slot_index]
        year = np.concatenate([p[0] for p in parts])
        if len(year) < 2:
            return
        start = np.concatenate([p[1] for p in parts])
        end = np.concatenate([p[2] for p in parts])
        inst = np.concatenate([p[3] for p in parts])
        union = len(parts) > 1 or self.slot_may_double[slot_index]
        if self.kernels is not None:
            y, t, dur = self.kernels.overlap_episodes(year, start, end, inst, years, slot.n,
                                                      slot.down_threshold, union)
        else:
            y, t, dur = self._sweep(slot, year, start, end, inst, union)
        if len(t) == 0:
            return
        m = len(t)
        source = _Streams(self, chunk, f"quorum:{slot.group}@{self.topo.slot_location(slot_index)}", made)
        rng = source[streams.DETECTION]
        td = slot.detection.sample(rng, m)
        rows = self.slot_rows[slot_index]
        attr = self.overlap_charge[slot_index]
        if slot.spec.failover:
            lag = td + self.group_failover.sample(rng, m)
            short = self._short(source, m, rows["failed_over"])
            add(y, t, dur, lag, short, rows["failing"], rows["failed_over"], attr)
        else:
            add(y, t, dur, td, None, rows["group_u"], rows["group_d"], attr)

    def _sweep(self, slot, year, start, end, inst, union):
        """The NumPy quorum sweep: (year, start, duration) of each group-loss episode."""
        # only failures that overlap another one can take the group below k, and most overlap
        # nothing: the exact sweep below runs on the clusters of overlapping failures only
        axis_start = start + year * _SEP
        order = np.argsort(axis_start)
        run_end = np.maximum.accumulate((end + year * _SEP)[order])
        new = np.ones(len(order), dtype=bool)
        new[1:] = axis_start[order[1:]] >= run_end[:-1]
        cluster = np.cumsum(new) - 1
        keep = order[np.bincount(cluster)[cluster] >= 2]
        if len(keep) < 2:
            return _NONE
        year, start, end, inst = year[keep], start[keep], end[keep], inst[keep]
        if union:
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
        y = np.floor(ups / _SEP).astype(np.int64)
        return y, ups - y * _SEP, downs - ups


_NONE = (np.zeros(0, np.int64), np.zeros(0), np.zeros(0))


def _array(x) -> np.ndarray:
    """Draws as a float64 array; a scalar as an array of one (the kernels broadcast it)."""
    return np.ascontiguousarray(x, dtype=np.float64).reshape(-1)


def _draw(dist, rng: "_Streams", purpose: int, size: int):
    """``size`` draws from the source's stream for ``purpose``; a fixed value is one scalar
    (no stream is made for it, and the arrays it meets broadcast it)."""
    if isinstance(dist, Fixed):
        return dist.value
    return dist.sample(rng[purpose], size)


class _Streams(dict):
    """The generators of one (chunk, source), made on first use (most sources need few), or
    taken from ``made``, the chunk's generators made ahead; the engine learns which are used."""

    def __init__(self, engine: "FastEngine", chunk: int, source: str, made: dict) -> None:
        super().__init__()
        self.engine, self.chunk, self.source, self.made = engine, chunk, source, made

    def __missing__(self, purpose: int) -> np.random.Generator:
        key = (self.source, purpose)
        self.engine.stream_keys.add(key)
        rng = self.made.pop(key, None)
        if rng is None:
            rng = streams.stream(self.engine.seed, self.chunk, self.source, purpose)
        self[purpose] = rng
        return rng


class _Chunk:
    """Episodes of one chunk integrated as they come: monthly minutes, attribution, alerts.

    Every call of :meth:`add` has one table row per phase, so the integral reads a single
    24-hour profile; attribution is a sum per call.
    """

    def __init__(self, engine: FastEngine, years: int, replay_years: int) -> None:
        self.e, self.years = engine, years
        self.failures = np.zeros(len(engine.names))
        self.attribution = np.zeros(len(engine.names))
        self.sample = replay_years
        self.keys, self.minutes, self.burn = [], [], []
        self.monthly = np.zeros(years * 12) if engine.kernels is not None else None

    def add(self, year, start, dur, lag, short, row1: int, row2: int, attr: int) -> None:
        """Episodes of ``dur`` hours from ``start``: the first phase lasts ``lag`` (at most
        ``dur``), the second the rest, at most ``short`` (None: no limit); each may be a
        scalar."""
        if not len(start) or (row1 == 0 and row2 == 0):
            return
        e = self.e
        if self.monthly is not None:
            m = len(start) if self.sample else 0
            i1, i2 = np.empty(m), np.empty(m)
            self.attribution[attr] += e.kernels.add_episodes(
                np.ascontiguousarray(year, np.int64), np.ascontiguousarray(start, np.float64),
                np.ascontiguousarray(dur, np.float64), _array(lag), _array(np.inf if short is None else short),
                row1, row2, e.bad, e.cum, self.monthly, i1, i2)
            if not self.sample:
                return
        p1 = np.minimum(lag, dur)
        p2 = dur - p1 if short is None else np.minimum(dur - p1, short)
        end1 = np.minimum(start + p1, YEAR)
        if self.monthly is not None:
            self._sample(year, start, end1, np.minimum(end1 + p2, YEAR), i1, i2, (i1 + i2) * 60.0)
            return
        end2 = np.minimum(end1 + p2, YEAR)
        i1 = integrate_vec(e.bad, e.cum, row1, start, end1, e.tiled)
        i2 = integrate_vec(e.bad, e.cum, row2, end1, end2, e.tiled)
        minutes = (i1 + i2) * 60.0
        self.keys.append(year * 12 + month_of(start))
        self.minutes.append(minutes)
        # summed in order, as the kernel does (NumPy's sum adds in eight lanes): both paths
        # give the same bits, so chunks of either path may make up one run
        self.attribution[attr] += np.cumsum(minutes)[-1]
        if self.sample:
            self._sample(year, start, end1, end2, i1, i2, minutes)

    def _sample(self, year, start, end1, end2, i1, i2, minutes) -> None:
        """Keep the run's first years' incidents for the alert replay."""
        hit = np.flatnonzero((minutes > 0) & (year < self.sample))
        if len(hit):
            s, e1 = start[hit], end1[hit]
            self.burn.append((e1 - s, end2[hit] - e1, i1[hit], i2[hit], minutes[hit]))

    def totals(self) -> ChunkTotals:
        years = self.years
        if self.monthly is not None:
            monthly = self.monthly.reshape(years, 12)
        elif self.minutes:
            monthly = np.bincount(np.concatenate(self.keys), np.concatenate(self.minutes),
                                  minlength=years * 12).reshape(years, 12)
        else:
            monthly = np.zeros((years, 12))
        totals = ChunkTotals(years, monthly.sum(axis=1), monthly, self.attribution, self.failures,
                             burn_years=self.sample)
        if self.burn:
            p1, p2, i1, i2, minutes = (np.concatenate(c) for c in zip(*self.burn))
            totals.incidents = len(minutes)
            # the alert replay runs on the run's first burn_sample_years only (sim.burn_rate)
            d = np.stack([p1, p2], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                f = np.where(d > 0, np.stack([i1, i2], axis=1) / np.where(d > 0, d, 1), 0.0)
            ttp = time_to_page(d, f, slo=self.e.topo.model.slo)
            paged = ~np.isnan(ttp)
            totals.pages = int(paged.sum())
            totals.time_to_page_sum = float(ttp[paged].sum() * 60.0)
            totals.paged_downtime = float(minutes[paged].sum())
        return totals
