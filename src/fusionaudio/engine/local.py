"""A streaming engine on threads, queues and a bounded window of items in flight.

Each step has its own worker threads and an input queue, so decoding, CPU experts and
model stages overlap. The source admits a new item only while fewer than a fixed number
are between it and the sink, so memory stays flat however many clips there are; within
that window a backlog gathers in front of whichever step a slow item holds up (a long
speech clip in ASR) while the steps before it go on. Model runtimes
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


def in_flight_limit(steps: list[Step[T]]) -> int:
    """How many items may be between the source and the sink at once: twice what each
    step takes at once (its batch size times its workers: one batch being worked on, one
    ready), summed over the steps. That is as many as per-step queues of that size
    would hold, so the bound on memory is theirs; but shared, because the cost of a clip
    varies by step: a step busy with a 60-second speech clip would otherwise fill its
    two-item inbox and stall every step before it while the other cores idle."""
    return max(2, sum(max(2, 2 * step.batch_size * max(1, step.workers)) for step in steps))


class _Window:
    """How many items are between the source and the sink, held to a limit. A count
    rather than a semaphore, so a step that returns fewer items than it took (or more)
    moves it by the difference and the window neither leaks shut nor grows."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._changed = threading.Condition()

    def enter(self, timeout: float) -> bool:
        """Admit one item; False when the window stayed full for ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.count < self.limit, timeout):
                return False
            self.count += 1
            return True

    def leave(self, items: int) -> None:
        with self._changed:
            self.count -= items
            self._changed.notify_all()


class LocalStreamingEngine:
    name = "local"

    def __init__(self, queue_size: int | None = None, in_flight: int | None = None) -> None:
        if queue_size is not None and queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if in_flight is not None and in_flight < 1:
            raise ValueError("in_flight must be at least 1")
        self.queue_size = queue_size
        self.in_flight = in_flight

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
        # queue_size, when set, bounds each inbox as well; unset, the window alone does
        queues: list[queue.Queue[T | _Done]] = [
            queue.Queue(maxsize=self.queue_size or 0) for _ in range(len(steps) + 1)
        ]
        window = _Window(self.in_flight or in_flight_limit(steps))

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
                    while not window.enter(timeout=0.1):
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
                    if len(out) != len(batch):
                        window.leave(len(batch) - len(out))
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
                window.leave(1)
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
