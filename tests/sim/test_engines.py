"""The two engines agree within statistical error, and a seed fixes every result."""
from __future__ import annotations

import math

import numpy as np

from conftest import simulate
from sim.model import load_model
from sim.montecarlo import wilson


def _reference_raw(**overrides) -> dict:
    return load_model(None, overrides=overrides).raw


def test_engines_agree_on_the_reference_topology():
    raw = _reference_raw()
    fast = simulate(raw, engine="fast", years=20_000, seed=3)
    slow = simulate(raw, engine="simpy", years=10_000, seed=4)
    se = math.hypot(fast.downtime.std(ddof=1) / math.sqrt(fast.years),
                    slow.downtime.std(ddof=1) / math.sqrt(slow.years))
    assert abs(fast.downtime.mean() - slow.downtime.mean()) < 3 * se
    # P(D > budget): both estimates inside each other's 3-sigma band
    p_fast = (fast.downtime > 52.56).mean()
    p_slow = (slow.downtime > 52.56).mean()
    sd = math.sqrt(p_fast * (1 - p_fast) * (1 / fast.years + 1 / slow.years))
    assert abs(p_fast - p_slow) < 3 * sd
    # attribution of the biggest budget eater agrees too
    fast_attr = fast.attribution / fast.years
    slow_attr = slow.attribution / slow.years
    top = int(np.argmax(fast_attr))
    assert int(np.argmax(slow_attr)) == top


def test_simpy_only_where_outages_meet_equals_simpy_everywhere():
    raw = _reference_raw()
    hybrid = simulate(raw, engine="simpy", years=10_000, seed=8)
    full = simulate(raw, engine="simpy-full", years=500, seed=9)
    se = math.hypot(hybrid.downtime.std(ddof=1) / math.sqrt(hybrid.years),
                    full.downtime.std(ddof=1) / math.sqrt(full.years))
    assert abs(hybrid.downtime.mean() - full.downtime.mean()) < 3 * se
    h_attr, f_attr = hybrid.attribution / hybrid.years, full.attribution / full.years
    assert int(np.argmax(h_attr)) == int(np.argmax(f_attr))


def test_engines_agree_on_burn_rate_pages():
    raw = _reference_raw()
    fast = simulate(raw, engine="fast", years=4_000, seed=5)
    slow = simulate(raw, engine="simpy", years=4_000, seed=6)
    pf, ps = fast.pages / fast.burn_years, slow.pages / slow.burn_years
    assert abs(pf - ps) < 3 * math.sqrt(pf / fast.burn_years + ps / slow.burn_years) + 0.02 * pf


def test_same_seed_same_result_and_workers_do_not_matter():
    raw = _reference_raw()
    one = simulate(raw, engine="fast", years=3_000, seed=11, chunk_years=750)
    again = simulate(raw, engine="fast", years=3_000, seed=11, chunk_years=750)
    parallel = simulate(raw, engine="fast", years=3_000, seed=11, chunk_years=750, workers=2)
    assert np.array_equal(one.downtime, again.downtime)
    assert np.array_equal(one.downtime, parallel.downtime)
    other = simulate(raw, engine="fast", years=3_000, seed=12, chunk_years=750)
    assert not np.array_equal(one.downtime, other.downtime)
    for engine in ("simpy", "simpy-full"):
        s1 = simulate(raw, engine=engine, years=40, seed=11)
        s2 = simulate(raw, engine=engine, years=40, seed=11)
        assert np.array_equal(s1.downtime, s2.downtime)


def test_wilson_interval():
    low, high = wilson(45, 1000)
    assert low < 0.045 < high
    assert wilson(0, 100)[0] < 1e-12 and 0.02 < wilson(0, 100)[1] < 0.05   # about 3/N


def test_precision_stops_early_and_deterministically():
    from sim.model import model_from_dict
    from sim.montecarlo import run_monte_carlo
    from sim.topology import Topology

    raw = _reference_raw()
    topo = Topology(model_from_dict(raw).model)
    runs = [run_monte_carlo(topo, raw, engine="fast", seed=2, years=200_000, budget_minutes=52.56,
                            precision=0.01, workers=1, chunk_years=500) for _ in range(2)]
    assert runs[0].stopped_by_precision and runs[0].totals.years < 200_000
    assert runs[0].totals.years == runs[1].totals.years
    low, high = wilson(int((runs[0].totals.downtime > 52.56).sum()), runs[0].totals.years)
    assert (high - low) / 2 <= 0.01


def test_a_model_without_failures_or_router_runs_everywhere(tmp_path):
    from sim import run_simulation

    path = tmp_path / "quiet.yaml"
    path.write_text("regions: {r: {traffic_share: 1}}\ngroups: {g: {n: 1}}\nfailure_modes: {}\n")
    for engine in ("fast", "simpy", "simpy-full"):
        result = run_simulation(str(path), years=100, seed=1, engine=engine, workers=1)
        assert result["downtime_minutes"]["mean"] == 0.0 and result["gate"]["passed"]
    # too few years cannot bound P(D > budget) under 5 %: the gate says so
    few = run_simulation(str(path), years=50, seed=1, engine="fast", workers=1, sensitivities=False)
    assert not few["gate"]["passed"] and "7.13 %" in few["gate"]["reasons"][0]


def test_phases_that_fail_no_request_draw_nothing(monkeypatch):
    """A lost chat replica or a failed-over region fails no request in the reference model
    (each region has capacity to spare): those phases share the 'no impact' row and their
    scale-out delays, which could not change a result, are never drawn."""
    import copy

    from sim import engine_fast, streams
    from sim.model import model_from_dict
    from sim.topology import Topology

    def purposes(raw: dict) -> tuple[engine_fast.FastEngine, set[int]]:
        made = []
        original = streams.stream
        monkeypatch.setattr(engine_fast.streams, "stream",
                            lambda *key: made.append(key[-1]) or original(*key))
        engine = engine_fast.FastEngine(Topology(model_from_dict(raw).model), 3)
        engine.run_chunk(0, 500)
        monkeypatch.undo()
        return engine, set(made)

    engine, made = purposes(load_model().raw)
    chat = engine.topo.modes[[m.name for m in engine.topo.modes].index("chat_server_crash")]
    rows = engine.mode_rows[engine.topo.modes.index(chat)]
    assert not rows["capacity"].any() and not rows["failed_over"].any()
    assert streams.SCALE_OUT not in made
    # without capacity to spare the shortage fails requests until the scale-out: drawn
    short = copy.deepcopy(load_model().raw)
    for region in short["regions"].values():
        region["capacity"] = 1.0
    engine, made = purposes(short)
    assert streams.SCALE_OUT in made


def test_a_detection_that_moves_no_minute_is_drawn_only_for_the_alert_replay(monkeypatch):
    """A bad release fails the same requests before and after it is detected: both phases
    share one table row, and its detection delay is drawn only where the alert replay sees
    the phases (the run's first years)."""
    from sim import engine_fast, streams
    from sim.topology import Topology

    engine = engine_fast.FastEngine(Topology(load_model().model), 3)
    rows = engine.mode_rows[[m.name for m in engine.topo.modes].index("deploy_failure")]
    assert np.array_equal(rows["group_u"], rows["group_d"])
    made = []
    original = streams.stream
    monkeypatch.setattr(engine_fast.streams, "stream", lambda *key: made.append(key[2:]) or original(*key))
    replayed = engine.run_chunk(0, 500, 0)
    assert ("deploy_failure@us-east", streams.DETECTION) in made
    made.clear()
    engine = engine_fast.FastEngine(Topology(load_model().model), 3)   # nothing made ahead
    later = engine.run_chunk(0, 500, engine.burn_sample_years)
    assert ("deploy_failure@us-east", streams.DETECTION) not in made
    # the same failures and minutes either way (only the summation's rounding differs)
    np.testing.assert_allclose(later.downtime, replayed.downtime, rtol=1e-9, atol=1e-9)
    assert later.burn_years == 0 and replayed.burn_years == 500


def test_a_chunk_is_the_same_whichever_chunks_its_engine_ran_before():
    """The fast engine makes the generators the last chunk used ahead of the next chunk's
    work: a chunk's draws must not depend on what its engine ran before."""
    from sim.engine_fast import FastEngine
    from sim.topology import Topology

    topo = Topology(load_model().model)
    fresh = FastEngine(topo, 11).run_chunk(4, 600, 2_400)
    used = FastEngine(topo, 11)
    for chunk, first in ((0, 0), (9, 5_400)):
        used.run_chunk(chunk, 600, first)
    again = used.run_chunk(4, 600, 2_400)
    assert np.array_equal(fresh.downtime, again.downtime)
    assert np.array_equal(fresh.attribution, again.attribution)
