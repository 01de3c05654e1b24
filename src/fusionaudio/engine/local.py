"""A streaming engine on threads and bounded queues.

Each step has its own worker threads and a bounded input queue, so decoding,
CPU experts and model stages overlap, and a slow step holds back the source instead of
letting items pile up: memory stays flat however many clips there are. Model runtimes
(onnxruntime, CTranslate2, llama.cpp, numpy) release the GIL while they compute, so
threads give real parallelism; a step's workers share the one model its ``setup()``
loaded.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from fusionaudio.engine.base import EngineStats, ProgressFn, Step, StepStats

T = TypeVar("T")


class _Done:
    """Sentinel: no more items will come on this queue."""


_DONE = _Done()


def queue_sizes(steps: list[Step[T]], fixed: int | None) -> list[int]:
    """Each step's inbox, then the sink's: ``fixed`` for all, or else twice what a step
    takes at once (its batch size times its workers): one batch being worked on, one
    ready. Items in a queue hold decoded audio and stems, so a queue longer than its
    step can drain only holds memory: before a slow one-clip-at-a-time stage it holds
    two clips per worker, not sixteen."""
    if fixed is not None:
        return [fixed] * (len(steps) + 1)
    sizes = [max(2, 2 * step.batch_size * max(1, step.workers)) for step in steps]
    return [*sizes, max(sizes, default=2)]


class LocalStreamingEngine:
    name = "local"

    def __init__(self, queue_size: int | None = None) -> None:
        if queue_size is not None and queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.queue_size = queue_size

    def run(
        self,
        steps: list[Step[T]],
        items: Iterable[T],
        sink: Callable[[T], None],
        progress: ProgressFn | None = None,
    ) -> EngineStats:
        started = time.perf_counter()
        stats = EngineStats(steps={step.name: StepStats() for step in steps})
        stats_lock = threading.Lock()
        failure: list[BaseException] = []
        stop = threading.Event()
        queues: list[queue.Queue[T | _Done]] = [
            queue.Queue(maxsize=size) for size in queue_sizes(steps, self.queue_size)
        ]

        for step in steps:
            t0 = time.perf_counter()
            step.setup()
            stats.steps[step.name].setup_s = time.perf_counter() - t0

        def put(q: queue.Queue[T | _Done], value: T | _Done) -> None:
            while not stop.is_set():
                try:
                    q.put(value, timeout=0.1)
                    return
                except queue.Full:
                    continue

        def source() -> None:
            try:
                for item in items:
                    if stop.is_set():
                        return
                    put(queues[0], item)
            except BaseException as exc:
                failure.append(exc)
                stop.set()
            finally:
                for _ in range(max(1, steps[0].workers) if steps else 1):
                    put(queues[0], _DONE)

        remaining = [max(1, step.workers) for step in steps]

        def worker(index: int) -> None:
            step = steps[index]
            inbox, outbox = queues[index], queues[index + 1]
            finished = False
            try:
                while not finished and not stop.is_set():
                    try:
                        first = inbox.get(timeout=0.1)
                    except queue.Empty:
                        continue
                    if isinstance(first, _Done):
                        break
                    batch = [first]
                    while len(batch) < step.batch_size:
                        try:
                            nxt = inbox.get_nowait()
                        except queue.Empty:
                            break
                        if isinstance(nxt, _Done):
                            finished = True
                            break
                        batch.append(nxt)
                    t0 = time.perf_counter()
                    out = step.process(batch)
                    elapsed = time.perf_counter() - t0
                    with stats_lock:
                        record = stats.steps[step.name]
                        record.busy_s += elapsed
                        record.items += len(batch)
                        record.batches += 1
                    if progress is not None:
                        progress(step.name, len(batch))
                    for value in out:
                        put(outbox, value)
            except BaseException as exc:
                failure.append(exc)
                stop.set()
            finally:
                with stats_lock:
                    remaining[index] -= 1
                    last = remaining[index] == 0
                if last:
                    downstream = steps[index + 1].workers if index + 1 < len(steps) else 1
                    for _ in range(max(1, downstream)):
                        put(outbox, _DONE)

        threads = [threading.Thread(target=source, name="source", daemon=True)]
        for index, step in enumerate(steps):
            for n in range(max(1, step.workers)):
                threads.append(
                    threading.Thread(
                        target=worker, args=(index,), name=f"{step.name}-{n}", daemon=True
                    )
                )
        for thread in threads:
            thread.start()
        try:
            final = queues[-1]
            while True:
                try:
                    value = final.get(timeout=0.2)
                except queue.Empty:
                    if stop.is_set():
                        break
                    continue
                if isinstance(value, _Done):
                    break
                sink(value)
        except BaseException:
            stop.set()
            raise
        finally:
            if failure:
                stop.set()
            for thread in threads:
                thread.join(timeout=5.0 if stop.is_set() else None)
            for step in steps:
                step.teardown()
        if failure:
            raise RuntimeError(f"a pipeline step failed: {failure[0]!r}") from failure[0]
        stats.wall_s = time.perf_counter() - started
        return stats
