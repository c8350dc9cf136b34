"""Seeded, independent random streams: one per chunk of years, failure mode and purpose.

``SeedSequence(seed, spawn_key=(chunk,))`` is exactly the ``chunk``-th child of
``SeedSequence(seed).spawn(n)``, so chunks are independent streams whatever the number of
worker processes.  Inside a chunk every failure mode draws its arrivals, durations,
detections ... from its own stream, keyed by a stable hash of the mode's name: a what-if
that changes one parameter leaves every other draw unchanged (common random numbers), so
the difference between two designs is not noise.

The bit generator is SFC64 (a chaotic 256-bit-state generator that passes PractRand and
BigCrush, one of NumPy's fastest): it draws the fast engine's normals ~15 % faster than PCG64 and
is seeded in ~60 % of the time (~100 generators a chunk of years).  Until issue 8's fourth
round the streams were PCG64: results for a seed from before that differ (within error).
"""
from __future__ import annotations

import zlib

import numpy as np

ARRIVALS, DURATIONS, DETECTION, FAILOVER, RECOVERY, BURSTS, CCF, GAPS, SCALE_OUT = range(9)


def chunk_sequence(seed: int, chunk: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(chunk,))


def stream(seed: int, chunk: int, name: str, purpose: int) -> np.random.Generator:
    """The generator of one (chunk, named source, purpose)."""
    tag = zlib.crc32(name.encode())
    return np.random.Generator(np.random.SFC64(
        np.random.SeedSequence(seed, spawn_key=(chunk, tag, purpose))))
