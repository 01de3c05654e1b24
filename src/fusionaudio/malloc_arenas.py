"""Two glibc malloc arenas for a run's process instead of up to eight per core.

The local engine runs every stage in threads of its own, and glibc gives each thread its
own malloc arena; memory freed in one arena is not reused by another, so the process's
RSS climbs while clips of new lengths pass through every thread. Measured on the 2-core
machine (docs/benchmarks.md): peak RSS 21% higher at 600 clips than at 60, a plateau
reached after ~180; with two arenas, 12% and no slower. The setting is what
``MALLOC_ARENA_MAX=2`` does, which a running process cannot set for itself; ``mallopt``
can, as long as it runs before the threads first allocate.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """True when the limit was set. Not on other C libraries (musl, macOS), and not when
    the user chose a value in ``MALLOC_ARENA_MAX`` (glibc already applied theirs)."""
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, arenas))
