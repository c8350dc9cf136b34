"""Interaction clusters: SimPy only where outages meet (the SimPy engine's default mode).

Reference tip 2: "draw independent failure times from NumPy, and use SimPy only for
interactions".  Without shared repair crews every failure's timing is independent of the
rest of the system, so a chunk's failures (renewals, common causes, bursts) are drawn
with NumPy first.  Failures whose impact windows overlap nothing else are *isolated*:
their effect on a year that is otherwise all up is the closed-form two-phase episode of
:mod:`sim.episodes` (the same tables SimPy integrates).  Every group of overlapping
failures (a *cluster*: two regions down, a crash during a partition, quorum loss, a burst,
a common cause repaired unit by unit) is replayed exactly through the SimPy year of
:mod:`sim.engine_simpy`.  The result is identical in distribution to running everything
through SimPy (``SimpyEngine(full=True)``, tested), at a fraction of the events.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from sim.burn_rate import time_to_page
from sim.episodes import ChunkTotals, month_of
from sim.topology import integrate_vec

YEAR = 8760.0
_SEP = 10_000.0
INSTANCE, CCF_WHOLE, CCF_INDEPENDENT = 0, 1, 2


def draw_events(engine, draws, years: int) -> dict[str, np.ndarray]:
    """Every failure of the chunk as arrays: year, t, dur, td, tf, mode, slot, inst, kind."""
    topo = engine.topo
    parts = []
    for mode, by_slot in zip(topo.modes, draws):
        group = topo.model.groups[mode.group]
        n = group.n
        for s in mode.slots:
            d = by_slot[s]
            if mode.rate > 0:
                year, t, inst, dur, td, tf = engine._renewal_arrays(mode, d, years, n)
                if mode.burst_probability > 0 and n > 1:
                    r = d.burst
                    hit = np.flatnonzero(r.random(len(t)) < mode.burst_probability)
                    extra = [(year, t, inst, dur, td, tf)]
                    for j in range(1, min(mode.burst_extra, n - 1) + 1):
                        k = len(hit)
                        extra.append((year[hit], t[hit] + r.random(k) * mode.burst_window,
                                      (inst[hit] + j) % n,
                                      mode.duration.sample(r, k) + mode.recovery.sample(r, k),
                                      mode.detection.sample(r, k), mode.failover.sample(r, k)))
                    year, t, inst, dur, td, tf = (np.concatenate(a) for a in zip(*extra))
                parts.append(_pack(year, t, dur, td, tf, mode.index, s, inst, INSTANCE))
                parts[-1]["so"] = _scale_out(topo, d, len(t))
            if mode.ccf_rate > 0:
                r = d.ccf.rng
                year = np.repeat(np.arange(years), r.poisson(mode.ccf_rate * YEAR, years))
                m = len(year)
                t = r.random(m) * YEAR
                dur = mode.duration.sample(r, m) + mode.recovery.sample(r, m)
                kind = CCF_WHOLE if mode.ccf_restore == "whole" else CCF_INDEPENDENT
                parts.append(_pack(year, t, dur, mode.detection.sample(r, m),
                                   mode.failover.sample(r, m), mode.index, s, np.zeros(m, np.int64), kind))
                parts[-1]["so"] = _scale_out(topo, d, m)
    if not parts:
        return {}
    ev = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    keep = ev["t"] < YEAR
    return {k: v[keep] for k, v in ev.items()}


def _scale_out(topo, d, size: int) -> np.ndarray:
    """Scale-out delays (with autoscaling; else a shortage lasts as long as its cause)."""
    if topo.scale_out is None:
        return np.full(size, np.inf)
    return topo.scale_out.sample(d.scale_out_rng, size)


def _pack(year, t, dur, td, tf, mode, slot, inst, kind) -> dict:
    m = len(t)
    return {"year": np.asarray(year, np.int64), "t": t, "dur": dur, "td": td, "tf": tf,
            "mode": np.full(m, mode, np.int64), "slot": np.full(m, slot, np.int64),
            "inst": np.asarray(inst, np.int64), "kind": np.full(m, kind, np.int64)}


def run_chunk(engine, draws, years: int, burn_years: int) -> ChunkTotals:
    """Isolated failures in closed form, clusters through SimPy; see the module docstring.
    The first ``burn_years`` years' incidents are replayed through the alerts."""
    topo = engine.topo
    names = engine.names
    totals = ChunkTotals(years, np.zeros(years), np.zeros((years, 12)), np.zeros(len(names)),
                         np.zeros(len(names)), burn_years=burn_years)
    ev = draw_events(engine, draws, years)
    if not ev:
        return totals
    name_of_mode = np.array([engine.name_index[m.name] for m in topo.modes])
    totals.failures += np.bincount(name_of_mode[ev["mode"]], minlength=len(names))

    # clusters: failures whose windows [t, t + dur) overlap, within a year
    order = np.argsort(ev["year"] * _SEP + ev["t"], kind="stable")
    ev = {k: v[order] for k, v in ev.items()}
    start = ev["year"] * _SEP + ev["t"]
    end = ev["year"] * _SEP + np.minimum(ev["t"] + ev["dur"], YEAR)
    run_end = np.maximum.accumulate(end)
    new = np.ones(len(start), dtype=bool)
    new[1:] = start[1:] >= run_end[:-1]
    cluster = np.cumsum(new) - 1
    size = np.bincount(cluster)
    isolated = (size[cluster] == 1) & (ev["kind"] != CCF_INDEPENDENT)

    incidents: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    _isolated_totals(engine, {k: v[isolated] for k, v in ev.items()}, totals, incidents)
    _cluster_totals(engine, draws, {k: v[~isolated] for k, v in ev.items()}, totals, incidents)
    _burn(topo, totals, incidents)
    return totals


def _isolated_totals(engine, ev: dict, totals: ChunkTotals, incidents: list) -> None:
    if not len(ev["t"]):
        return
    rows = engine.isolated_rows          # kind -> (modes x slots) table rows
    redundant = engine.redundant_slot[ev["slot"]]
    failover = engine.failover_slot[ev["slot"]]
    instance_level = redundant & (ev["kind"] == INSTANCE)
    m, s = ev["mode"], ev["slot"]
    dur, td, tf = ev["dur"], ev["td"], ev["tf"]
    p1 = np.where(instance_level, np.minimum(td, dur),
                  np.where(failover, np.minimum(td + tf, dur), np.minimum(td, dur)))
    tab1 = np.where(instance_level, rows["partial"][m, s],
                    np.where(failover, rows["failing"][m, s], rows["group_u"][m, s]))
    tab2 = np.where(instance_level, rows["capacity"][m, s],
                    np.where(failover, rows["failed_over"][m, s], rows["group_d"][m, s]))
    attr = np.where(instance_level, engine.attr_self[m], engine.attr_group[m])
    start = ev["t"]
    p1 = np.minimum(p1, YEAR - start)
    # a capacity shortage (failed over, a replica lost) lasts at most the scale-out delay
    shortage = np.where(instance_level, rows["capacity"][m, s] > 0, failover)
    rest = np.where(shortage, np.minimum(dur - p1, ev["so"]), dur - p1)
    p2 = np.clip(np.minimum(rest, YEAR - start - p1), 0.0, None)
    i1 = integrate_vec(engine.bad_tab, engine.cum_tab, tab1, start, start + p1, engine.tiled_tab)
    i2 = integrate_vec(engine.bad_tab, engine.cum_tab, tab2, start + p1, start + p1 + p2, engine.tiled_tab)
    minutes = (i1 + i2) * 60.0
    year = ev["year"]
    years = totals.years
    totals.downtime += np.bincount(year, minutes, minlength=years)
    totals.monthly += np.bincount(year * 12 + month_of(start), minutes, minlength=years * 12).reshape(years, 12)
    totals.attribution += np.bincount(attr, minutes, minlength=len(totals.attribution))
    hit = (minutes > 0) & (year < totals.burn_years)
    if hit.any():
        d = np.stack([p1[hit], p2[hit]], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(d > 0, np.stack([i1[hit], i2[hit]], axis=1) / np.where(d > 0, d, 1), 0.0)
        incidents.append((d, f, minutes[hit]))


def _cluster_totals(engine, draws, ev: dict, totals: ChunkTotals, incidents: list) -> None:
    if not len(ev["t"]):
        return
    topo = engine.topo
    counts = [0] * len(engine.names)     # failures are already counted
    bounds = np.searchsorted(ev["year"], np.arange(totals.years + 1))
    years_with = np.flatnonzero(np.diff(bounds))
    cols = {k: v.tolist() for k, v in ev.items()}
    phases: list[list[tuple[float, float]]] = []
    for y in years_with.tolist():
        record = y < totals.burn_years
        env, year = engine.new_year(record)
        for k in range(bounds[y], bounds[y + 1]):
            mode = topo.modes[cols["mode"][k]]
            slot = cols["slot"][k]
            d = draws[mode.index][slot]
            if cols["kind"][k] == INSTANCE:
                callback = partial(engine._fail_now, year, mode, d, slot, cols["inst"][k], cols["dur"][k],
                                   cols["td"][k], cols["tf"][k], counts, bursts=False)
            else:
                callback = partial(engine._ccf_now, year, mode, d, slot, cols["dur"][k], cols["td"][k],
                                   cols["tf"][k])
            env.timeout(cols["t"][k]).callbacks.append(callback)
        env.run(until=YEAR)
        year.finish()
        totals.downtime[y] += year.downtime
        totals.monthly[y] += year.monthly
        for name, minutes in year.attribution.items():
            totals.attribution[engine.name_index.get(name, 0)] += minutes
        if record:
            phases.extend(engine.incidents_of(year))
    if phases:
        incidents.append(engine.pad_incidents(phases))


def _burn(topo, totals: ChunkTotals, incidents: list) -> None:
    for d, f, minutes in incidents:
        ttp = time_to_page(d, f, slo=topo.model.slo)
        paged = ~np.isnan(ttp)
        totals.incidents += len(ttp)
        totals.pages += int(paged.sum())
        totals.time_to_page_sum += float(ttp[paged].sum() * 60.0)
        totals.paged_downtime += float(minutes[paged].sum())
