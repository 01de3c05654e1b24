"""The command's process keeps glibc to two malloc arenas however many threads allocate
(docs/benchmarks.md: the arena per thread is what made RSS climb over a long run)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

THREADS_ALLOCATING = """
import ctypes, sys, threading
from fusionaudio.malloc_arenas import limit_malloc_arenas

print(limit_malloc_arenas() if sys.argv[1] == "limit" else "unlimited", flush=True)
together = threading.Barrier(8)
kept = []

def allocate():
    together.wait()
    kept.append(bytearray(100_000))  # above pymalloc's size: glibc malloc, this thread's arena
    together.wait()

threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


def _arenas(mode: str) -> tuple[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", THREADS_ALLOCATING, mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )
    arenas = sum(line.startswith("Arena ") for line in done.stderr.splitlines())
    return done.stdout.strip(), arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_eight_allocating_threads_share_two_arenas_once_limited() -> None:
    said, unlimited = _arenas("free")
    assert said == "unlimited" and unlimited >= 4  # glibc's default: an arena per thread
    said, limited = _arenas("limit")
    assert said == "True" and limited <= 2
