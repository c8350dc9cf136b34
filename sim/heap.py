"""Heap reuse for the fast engine's NumPy temporaries (glibc only; elsewhere a no-op).

A chunk of the fast engine makes thousands of temporary arrays of 0.1-2 MB.  glibc's
malloc serves each one above its mmap threshold (128 KiB, raised dynamically to the
largest block freed so far) with fresh pages from the kernel and trims the heap's top
again when the chunk frees them, so every chunk page-faults its ~40 MB of temporaries
in anew: ~10,000 faults and 10-20 % of the engine's time on the reference model.
:func:`reuse_freed_memory` raises the mmap and trim thresholds for the duration of a
Monte Carlo run, so freed blocks are handed out again instead, and on exit sets glibc's
defaults back and returns the freed memory to the system (``malloc_trim``).  The memory
a run holds is what its largest chunk needs, as before; only its reuse changes.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Iterator

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_THRESHOLD = 128 * 1024        # glibc's default for both
_RUN_THRESHOLD = 512 * 1024 * 1024     # larger than any block a chunk allocates


def _glibc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _glibc()


def keep_freed_memory() -> None:
    """From now on, freed heap blocks stay in the process for reuse (a worker process)."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _RUN_THRESHOLD)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _RUN_THRESHOLD)


def release_freed_memory() -> None:
    """glibc's default thresholds again, and the freed memory back to the system."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
        _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
        _LIBC.malloc_trim(0)


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Keep freed heap blocks for reuse while the block runs (see the module docstring)."""
    keep_freed_memory()
    try:
        yield
    finally:
        release_freed_memory()
