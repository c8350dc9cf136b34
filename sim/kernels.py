"""Compiled kernels of the fast engine: the per-failure work that draws nothing, in one pass.

The fast engine (:mod:`sim.engine_fast`) draws its random numbers with NumPy (vectorised
draws from a ``Generator`` are faster than Numba's own) and, on long runs, hands the
arithmetic that follows to kernels compiled with Numba:

* :func:`cumsum` - the exponential spacings' running sum (NumPy's cast-and-sum is ~10x slower);
* :func:`renewal_times` - failure positions in up-time shifted to calendar time by the
  outages before them in the same (year, instance), late failures made placeholders;
* :func:`add_episodes` - two-phase episodes integrated against the bad-by-hour tables,
  each one's minutes added to its (year, month) and to the attribution;
* :func:`overlap_episodes` - the exact quorum sweep, on failures bucketed by year
  (a counting sort, skipped when they come in year order) and sorted within each year's
  few, instead of sorting the chunk's.

Each repeats the NumPy path's floating-point operations in the same order, so both give
the same bits (tested).  :func:`load`
returns this module, or ``None`` when Numba cannot be imported or compile - the engine
then runs its NumPy path.  Machine code is cached on disk (Numba's ``__pycache__`` beside
this file, else its user-wide cache, or ``NUMBA_CACHE_DIR``); with no writable cache
directory the kernels are compiled in memory, by every process that loads them.
"""
from __future__ import annotations

import contextlib
import math
import sys
import warnings

import numpy as np

from sim.quantities import HOURS_PER_MONTH

YEAR = 8760.0
SEP = 10_000.0   # hours between years (and owners) on the sweep's time axis, as engine_fast

try:  # pragma: no cover - exercised by whichever environment runs the tests
    import numba
except Exception:  # ImportError, or a Numba that does not support this NumPy
    numba = None


def _jit(fn):
    """``@njit`` with an on-disk cache when a cache directory is writable (Numba decides
    where at decoration time, and raises RuntimeError when nowhere is)."""
    if numba is None:
        return fn
    try:
        return numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # no writable cache directory: compile in memory
        return numba.njit(nogil=True)(fn)


@_jit
def renewal_times(pos, to_owner, owners, n, dur):
    """(year, instance, hours into the year, late count) of failures at up-time ``pos``.

    ``pos`` counts mean up-times across the (year x instance) owners laid end to end;
    ``to_owner`` is 1 / (mean up-times an owner's year holds).  Failures shifted past the
    year's end become placeholders at the year's end with no duration (``dur`` is
    modified in place) and are counted in the fourth value.
    """
    m = len(pos)
    year = np.empty(m, np.int64)
    inst = np.empty(m, np.int64)
    t = np.empty(m)
    total = 0.0
    base = 0.0
    prev = -1
    late = 0
    for i in range(m):
        p = pos[i] * to_owner
        owner = int(p)
        if owner > owners - 1:
            owner = owners - 1
        d = dur[i]
        total += d
        before = total - d          # as cumsum(dur) - dur
        # as maximum.accumulate(before * first); a select, not a branch: owners change
        # every few failures, a branch would be mispredicted every other time
        base = before if (owner != prev) & (before > base) else base
        prev = owner
        ti = ((p - owner) * YEAR + before) - base
        if ti >= YEAR:
            ti = YEAR
            dur[i] = 0.0
            late += 1
        t[i] = ti
        year[i] = owner // n
        inst[i] = owner - year[i] * n
    return year, inst, t, late


@_jit
def _integral(bad, cum, row, a, b):
    """As :func:`sim.topology.integrate_vec` for one interval of table ``row``."""
    ha = math.floor(a)
    if math.floor(b) == ha:
        return (b - a) * bad[row, int(ha) % 24]
    return _F(bad, cum, row, b) - _F(bad, cum, row, a)


@_jit
def _F(bad, cum, row, t):
    day = math.floor(t * (1.0 / 24.0))
    rem = t - day * 24.0
    h = int(rem)
    if h > 23:
        h = 23
    return day * cum[row, 24] + cum[row, h] + (rem - h) * bad[row, h]


@_jit
def cumsum(x):
    """Running sum in double precision (``np.cumsum(x, dtype=np.float64)``, without the cast's
    buffering)."""
    out = np.empty(len(x))
    total = 0.0
    for i in range(len(x)):
        total += np.float64(x[i])
        out[i] = total
    return out


@_jit
def add_episodes(year, start, dur, lag, short, row1, row2, bad, cum, monthly, i1_out, i2_out):
    """Integrate episodes and add their minutes to ``monthly`` (years x 12, flat); return the
    sum.  An episode's first phase lasts ``lag`` (at most its ``dur``), the second the rest, at
    most ``short``; ``lag`` and ``short`` of length one apply to every episode.
    ``i1_out``/``i2_out`` receive each phase's integral when they are as long as ``start``
    (the alert replay's years), and are ignored when empty."""
    record = len(i1_out) == len(start)
    each_lag, each_short = len(lag) > 1, len(short) > 1
    total = 0.0
    for i in range(len(start)):
        s = start[i]
        d = dur[i]
        p1 = min(lag[i if each_lag else 0], d)
        p2 = min(d - p1, short[i if each_short else 0])
        end1 = min(s + p1, YEAR)
        end2 = min(end1 + p2, YEAR)
        i1 = _integral(bad, cum, row1, s, end1)
        i2 = _integral(bad, cum, row2, end1, end2)
        minutes = (i1 + i2) * 60.0
        month = int(s / HOURS_PER_MONTH)
        if month > 11:
            month = 11
        monthly[year[i] * 12 + month] += minutes
        total += minutes
        if record:
            i1_out[i] = i1
            i2_out[i] = i2
    return total


@_jit
def _sort_by(keys, ties, idx, k):
    """Insertion sort of idx[:k] by (keys, ties) - a year holds a handful of failures."""
    for j in range(1, k):
        v = idx[j]
        kv, tv = keys[v], ties[v]
        i = j - 1
        while i >= 0 and (keys[idx[i]] > kv or (keys[idx[i]] == kv and ties[idx[i]] > tv)):
            idx[i + 1] = idx[i]
            i -= 1
        idx[i + 1] = v


@_jit
def overlap_episodes(year, start, end, inst, years, n, threshold, union):
    """Times when at least ``threshold`` distinct instances are down: (year, start, duration).

    Failures are bucketed by year (a counting sort, skipped when they come in year order)
    and each year's few sorted by start; only clusters of two or more overlapping failures
    are swept.  With ``union`` each instance's overlapping intervals are merged first (an
    instance down twice is one instance down).  Comparisons use the NumPy sweep's axis values.
    """
    m = len(year)
    counts = np.zeros(years + 1, np.int64)
    in_order = True
    for i in range(m):
        counts[year[i] + 1] += 1
        if i and year[i] < year[i - 1]:
            in_order = False
    widest = 0
    for y in range(years):
        widest = max(widest, counts[y + 1])
        counts[y + 1] += counts[y]
    if in_order:
        order = np.arange(m)
    else:
        order = np.empty(m, np.int64)
        fill = counts[:-1].copy()
        for i in range(m):
            order[fill[year[i]]] = i
            fill[year[i]] += 1
    # one year's failures sorted by start (axis values), then its clusters
    ks = np.empty(widest)
    ke = np.empty(widest)
    ki = np.empty(widest, np.int64)
    # the union's owners, starts, owner-axis starts and ends, order
    owner = np.empty(widest)
    ostart = np.empty(widest)
    oaxis = np.empty(widest)
    oend = np.empty(widest)
    oidx = np.empty(widest, np.int64)
    ev_t = np.empty(2 * widest)
    ev_kind = np.empty(2 * widest)
    ev_idx = np.empty(2 * widest, np.int64)
    out_y = np.empty(m, np.int64)
    out_t = np.empty(m)
    out_d = np.empty(m)
    found = 0
    for y in range(years):
        lo, hi = counts[y], counts[y + 1]
        k = hi - lo
        if k < 2:
            continue
        offset = y * SEP
        for j in range(k):
            i = order[lo + j]
            a, b = start[i] + offset, end[i] + offset
            p = j - 1
            while p >= 0 and ks[p] > a:
                ks[p + 1], ke[p + 1], ki[p + 1] = ks[p], ke[p], ki[p]
                p -= 1
            ks[p + 1], ke[p + 1], ki[p + 1] = a, b, i
        c0 = 0
        run_end = ke[0]
        for j in range(1, k + 1):
            if j < k and not ks[j] >= run_end:
                run_end = max(run_end, ke[j])
                continue
            if j - c0 >= 2:
                found = _sweep(ki[c0:j], j - c0, year, start, end, inst, n, threshold, union,
                               owner, ostart, oaxis, oend, oidx, ev_t, ev_kind, ev_idx,
                               out_y, out_t, out_d, found)
            if j < k:
                c0 = j
                run_end = ke[j]
    return out_y[:found], out_t[:found], out_d[:found]


@_jit
def _sweep(members, size, year, start, end, inst, n, threshold, union,
           owner, ostart, oaxis, oend, oidx, ev_t, ev_kind, ev_idx, out_y, out_t, out_d, found):
    """One cluster's depth sweep; appends its episodes to out_* from ``found`` on."""
    y = year[members[0]]
    offset = y * SEP
    cnt = 0
    if union:
        # sorted by (owner, start), merged where the start (owner axis) <= the running end
        for j in range(size):
            i = members[j]
            o = year[i] * n + inst[i]
            owner[j] = o
            ostart[j] = start[i]
            oaxis[j] = start[i] + o * SEP
            oend[j] = end[i] + o * SEP
            oidx[j] = j
        _sort_by(owner, ostart, oidx, size)
        j = 0
        while j < size:
            first = oidx[j]
            s = ostart[first]
            e = end[members[first]]
            run = oend[first]
            j += 1
            while j < size and not oaxis[oidx[j]] > run:
                run = max(run, oend[oidx[j]])
                e = max(e, end[members[oidx[j]]])
                j += 1
            ev_t[cnt] = e + offset
            ev_kind[cnt] = 0.0
            ev_t[cnt + 1] = s + offset
            ev_kind[cnt + 1] = 1.0
            cnt += 2
    else:
        for j in range(size):
            i = members[j]
            ev_t[cnt] = end[i] + offset
            ev_kind[cnt] = 0.0
            ev_t[cnt + 1] = start[i] + offset
            ev_kind[cnt + 1] = 1.0
            cnt += 2
    for j in range(cnt):
        ev_idx[j] = j
    _sort_by(ev_t, ev_kind, ev_idx, cnt)   # ends before starts at the same time
    depth = 0
    up = 0.0
    for j in range(cnt):
        e = ev_idx[j]
        prev = depth
        depth += 1 if ev_kind[e] == 1.0 else -1
        if depth >= threshold and prev < threshold:
            up = ev_t[e]
        elif depth < threshold and prev >= threshold:
            out_y[found] = y
            out_t[found] = up - y * SEP
            out_d[found] = ev_t[e] - up
            found += 1
    return found


def load():
    """This module when its kernels run here, else ``None`` (the engine's NumPy path).

    The first call in a process costs ~1 s of CPU with a warm cache (Numba sets up its
    compiler and links the cached machine code), 10-25 s on a cold one (it compiles).
    """
    global _ready
    if numba is None:
        return None
    if not _ready:
        try:
            with warnings.catch_warnings(), _no_blas_probe():
                warnings.simplefilter("ignore")   # NumbaWarning: a cache it cannot write
                _warm()
        except Exception:  # a broken install or a compiler error: the NumPy path still works
            return None
        _ready = True
    return sys.modules[__name__]


_ready = False


@contextlib.contextmanager
def _no_blas_probe():
    """Numba's set-up probes for BLAS by importing ``scipy.linalg`` (~0.5 s, a third of a
    warm start); the kernels use no BLAS, so the probe is made to fail fast unless
    ``scipy.linalg`` is loaded already.  Numba then offers no BLAS (``np.dot``) to
    ``@njit`` code in this process; ``scipy.linalg`` itself imports as usual afterwards."""
    blocked = "scipy.linalg" not in sys.modules
    if blocked:
        sys.modules["scipy.linalg"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if blocked and sys.modules.get("scipy.linalg", 0) is None:
            del sys.modules["scipy.linalg"]


def _warm() -> None:
    """Compile (or load from the cache) every kernel for the types the engine passes."""
    bad, cum = np.zeros((2, 24)), np.zeros((2, 25))
    f, i = np.zeros(2), np.zeros(2, np.int64)
    renewal_times(np.array([0.5, 1.5]), 1.0, 2, 2, f.copy())
    cumsum(np.zeros(2, np.float32))
    add_episodes(i, f, f, f, f, 1, 1, bad, cum, np.zeros(24), f.copy(), f.copy())
    overlap_episodes(i, f, f + 1.0, np.array([0, 1]), 1, 2, 2, True)
