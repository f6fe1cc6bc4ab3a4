"""Keep the C heap between training steps (glibc only): no page faults on every step's arrays.

A training step makes the same temporaries every time (the CNN of the benchmark: about
1.4 MB each, a few MB in all). With glibc's default settings each of them lands either in a
fresh mmap (above M_MMAP_THRESHOLD) or on top of a heap that is trimmed back to the system
once its free top passes M_TRIM_THRESHOLD; either way the next step touches brand-new pages,
and the kernel zero-fills every one: 1,500 to 2,000 minor faults and more than half of the
CPU time of a CNN step went to that (issue 18). glibc raises both thresholds by itself as it
sees large blocks freed, but only up to the size of the largest one, so a step's worth of
them is still handed back and fetched again.

keep_freed_memory() fixes both thresholds: blocks under 32 MiB come from the heap, and the
heap gives memory back only when more than 128 MiB of it is free at its top. The process
keeps what a step used for the next step; its peak resident size is what it was (a peak is
a peak), it only does not shrink between steps. Only `bpcalc train` calls it, once the data
are loaded; elsewhere (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import os

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit
TRIM_THRESHOLD = 128 * 1024 * 1024


def glibc() -> bool:
    """Whether this process runs on GNU libc (whose mallopt takes the parameters above)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION") is not None
    except (AttributeError, ValueError, OSError):  # no confstr, or no such name here
        return False


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); True when both took.
    Never raises: without glibc, or if mallopt refuses, the defaults stay."""
    if not glibc():
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    # both or neither: setting one turns glibc's own adjustment of both off, so the other
    # would stay at its 128 KiB default (measured: more faults than with no setting at all)
    return bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )
