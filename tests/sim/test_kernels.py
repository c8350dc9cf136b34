"""The fast engine's compiled kernels (sim/kernels.py) give the NumPy path's numbers, and the
engine falls back to the NumPy path when Numba is missing, broken or cannot cache."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import simulate
from sim import kernels
from sim.engine_fast import FastEngine
from sim.model import load_model, model_from_dict
from sim.topology import Topology

numba = pytest.importorskip("numba")


def _varied_raw() -> dict:
    """The reference model plus what it lacks: a fixed detection (a scalar lag), a fixed
    recovery, common causes restored unit by unit, a burst on a pair."""
    raw = copy.deepcopy(load_model().raw)
    raw["groups"]["postgres"]["detection"] = {"dist": "fixed", "value": "20s"}
    raw["failure_modes"]["redis_down"]["recovery"] = "30s"
    raw["failure_modes"]["nats_node_loss"]["ccf_restore"] = "independent"
    raw["failure_modes"]["chat_server_crash"]["burst"] = {"probability": 0.2, "extra": 1, "window": "60s"}
    return raw


@pytest.mark.parametrize("raw", [load_model().raw, _varied_raw()], ids=["reference", "varied"])
def test_compiled_and_numpy_paths_give_the_same_numbers(raw):
    topo = Topology(model_from_dict(raw).model)
    compiled, plain = FastEngine(topo, 5, compiled=True), FastEngine(topo, 5, compiled=False)
    assert compiled.kernels is not None and plain.kernels is None
    # chunk 0 replays its first years through the alerts; chunk 3 does not
    for chunk, first in ((0, 0), (3, 9_000)):
        a, b = compiled.run_chunk(chunk, 3_000, first), plain.run_chunk(chunk, 3_000, first)
        # the same bits, not only close: a run may mix chunks of both paths (sim.montecarlo)
        for field in ("monthly", "downtime", "attribution", "failures"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert (a.pages, a.incidents, a.burn_years) == (b.pages, b.incidents, b.burn_years)
        assert a.time_to_page_sum == b.time_to_page_sum and a.paged_downtime == b.paged_downtime
    assert a.downtime.mean() > 0


def test_long_runs_use_the_kernels_with_the_same_result_and_any_number_of_workers(monkeypatch):
    from sim import montecarlo

    raw = load_model().raw
    plain = simulate(raw, engine="fast", years=4_000, seed=9, chunk_years=1_000)
    monkeypatch.setattr(montecarlo, "COMPILED_MIN_YEARS", 1)
    made = []
    original = montecarlo.make_engine
    monkeypatch.setattr(montecarlo, "make_engine", lambda *a, **k: made.append(k) or original(*a, **k))
    one = simulate(raw, engine="fast", years=4_000, seed=9, chunk_years=1_000)
    two = simulate(raw, engine="fast", years=4_000, seed=9, chunk_years=1_000, workers=2)  # forked
    assert made[0]["compiled"] is True
    np.testing.assert_allclose(one.downtime, plain.downtime, rtol=1e-12, atol=1e-12)
    assert np.array_equal(one.downtime, two.downtime)


def test_without_numba_the_engine_runs_its_numpy_path(monkeypatch):
    monkeypatch.setattr(kernels, "numba", None)
    monkeypatch.setattr(kernels, "_ready", False)
    assert kernels.load() is None
    topo = Topology(load_model().model)
    engine = FastEngine(topo, 1, compiled=True)
    assert engine.kernels is None and engine.run_chunk(0, 200).downtime.shape == (200,)


def test_kernels_that_fail_to_compile_leave_the_numpy_path(monkeypatch):
    def broken() -> None:
        raise numba.core.errors.TypingError("no")

    monkeypatch.setattr(kernels, "_warm", broken)
    monkeypatch.setattr(kernels, "_ready", False)
    assert kernels.load() is None


def test_no_writable_cache_directory_compiles_in_memory(monkeypatch):
    calls = []

    class FakeNumba:
        @staticmethod
        def njit(**options):
            calls.append(options)
            if options.get("cache"):
                raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
            return lambda fn: ("compiled", fn)

    monkeypatch.setattr(kernels, "numba", FakeNumba)
    fn = lambda: None  # noqa: E731
    assert kernels._jit(fn) == ("compiled", fn)
    assert calls[0]["cache"] is True and "cache" not in calls[1]


def test_the_blas_probe_is_blocked_only_while_numba_sets_up():
    import sys

    had = "scipy.linalg" in sys.modules
    with kernels._no_blas_probe():
        assert had or sys.modules["scipy.linalg"] is None
    assert ("scipy.linalg" in sys.modules) == had
    import scipy.linalg

    assert scipy.linalg.norm([3.0, 4.0]) == 5.0


def test_kernels_load_and_agree_where_no_cache_directory_is_writable(tmp_path):
    """A read-only install with no writable cache anywhere: Numba finds no cache locator (here
    forced by offering it only one that never applies), the kernels compile in memory."""
    import os
    import subprocess
    import sys

    code = ("import numpy as np; from sim import kernels; from sim.engine_fast import FastEngine; "
            "from sim.model import load_model; from sim.topology import Topology; "
            "assert kernels.load() is not None; topo = Topology(load_model().model); "
            "a = FastEngine(topo, 2, compiled=True).run_chunk(1, 500, 500); "
            "b = FastEngine(topo, 2).run_chunk(1, 500, 500); "
            "np.testing.assert_allclose(a.monthly, b.monthly, rtol=1e-12, atol=1e-12); print('ok')")
    env = dict(os.environ, NUMBA_CACHE_LOCATOR_CLASSES="IPythonCacheLocator", NUMBA_CACHE_DIR="")
    env.pop("NUMBA_CACHE_DIR")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
