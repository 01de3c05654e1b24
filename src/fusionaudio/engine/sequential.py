"""Runs every step in the calling thread, one batch at a time: the reference engine.

Simple enough to be obviously right; tests compare the streaming engine against it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import TypeVar

from fusionaudio.engine.base import EngineStats, ProgressFn, Step, StepStats

T = TypeVar("T")


def _batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class SequentialEngine:
    name = "sequential"

    def run(
        self,
        steps: list[Step[T]],
        items: Iterable[T],
        sink: Callable[[T], None],
        progress: ProgressFn | None = None,
    ) -> EngineStats:
        started = time.perf_counter()
        stats = EngineStats(steps={step.name: StepStats() for step in steps})
        for step in steps:
            t0 = time.perf_counter()
            step.setup()
            stats.steps[step.name].setup_s = time.perf_counter() - t0
        try:
            chunk = max(step.batch_size for step in steps) if steps else 1
            for batch in _batches(items, chunk):
                current = batch
                for step in steps:
                    out: list[T] = []
                    for sub in _batches(current, step.batch_size):
                        t0 = time.perf_counter()
                        out.extend(step.process(sub))
                        record = stats.steps[step.name]
                        record.busy_s += time.perf_counter() - t0
                        record.items += len(sub)
                        record.batches += 1
                        if progress is not None:
                            progress(step.name, len(sub))
                    current = out
                for item in current:
                    sink(item)
        finally:
            for step in steps:
                step.teardown()
        stats.wall_s = time.perf_counter() - started
        return stats
