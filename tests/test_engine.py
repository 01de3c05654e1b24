from __future__ import annotations

import threading
import time

import pytest

from fusionaudio.engine.local import LocalStreamingEngine
from fusionaudio.engine.sequential import SequentialEngine


class Square:
    def __init__(self, name: str, batch_size: int, workers: int, delay: float = 0.0) -> None:
        self.name, self.batch_size, self.workers, self.delay = name, batch_size, workers, delay
        self.setups = 0
        self.max_batch = 0

    def setup(self) -> None:
        self.setups += 1

    def teardown(self) -> None:
        pass

    def process(self, batch: list[int]) -> list[int]:
        self.max_batch = max(self.max_batch, len(batch))
        time.sleep(self.delay)
        return [x * x for x in batch]


class Boom(Square):
    def process(self, batch: list[int]) -> list[int]:
        if 7 in batch:
            raise ValueError("seven")
        return batch


@pytest.mark.parametrize("engine", [SequentialEngine(), LocalStreamingEngine(queue_size=3)])
def test_engines_give_the_same_items(engine: SequentialEngine | LocalStreamingEngine) -> None:
    steps = [Square("a", 4, 2), Square("b", 3, 1)]
    out: list[int] = []
    progress: dict[str, int] = {}
    stats = engine.run(
        steps, range(50), out.append, lambda s, n: progress.__setitem__(s, progress.get(s, 0) + n)
    )
    assert sorted(out) == sorted(x**4 for x in range(50))
    assert progress == {"a": 50, "b": 50}
    assert stats.steps["a"].items == 50
    assert all(s.setups == 1 for s in steps)
    assert all(s.max_batch <= s.batch_size for s in steps)


def test_streaming_engine_bounds_items_in_flight() -> None:
    """The source is held back by the bounded queues: memory does not grow with input size."""
    produced = 0
    consumed = 0
    peak = 0
    lock = threading.Lock()

    def source():  # type: ignore[no-untyped-def]
        nonlocal produced
        for i in range(400):
            with lock:
                produced += 1
            yield i

    def sink(_: int) -> None:
        nonlocal consumed, peak
        with lock:
            consumed += 1
            peak = max(peak, produced - consumed)
        time.sleep(0.001)

    engine = LocalStreamingEngine(queue_size=4)
    engine.run([Square("a", 2, 2), Square("b", 2, 1, delay=0.002)], source(), sink)
    assert consumed == 400
    # 3 queues of 4, plus what each worker holds in a batch, plus one item at the source.
    assert peak <= 3 * 4 + 2 * 2 + 2 + 2


def test_by_default_a_slow_one_at_a_time_step_holds_two_items_waiting() -> None:
    """Unset, each inbox holds twice what its step takes at once: in front of a slow
    step of batch 1 (as separation and ASR are on a CPU) two items wait, not a fixed
    sixteen, while a batching step still gets full batches."""
    waiting: list[int] = []
    started = 0
    fast_done = 0
    lock = threading.Lock()

    class Fast(Square):
        def process(self, batch: list[int]) -> list[int]:
            nonlocal fast_done
            self.max_batch = max(self.max_batch, len(batch))
            with lock:
                fast_done += len(batch)
            return batch

    class Slow(Square):
        def process(self, batch: list[int]) -> list[int]:
            nonlocal started
            with lock:
                waiting.append(fast_done - started)
                started += len(batch)
            time.sleep(0.005)
            return batch

    fast = Fast("fast", 8, 1)
    out: list[int] = []
    LocalStreamingEngine().run([fast, Slow("slow", 1, 1)], range(200), out.append)
    assert sorted(out) == list(range(200))
    assert fast.max_batch == 8
    # two in the slow step's inbox, plus the fast step's batch that waits to be put
    assert max(waiting) <= 2 + 8
    assert max(waiting) >= 2  # the queue did fill: the bound is what held it


def test_a_step_exception_stops_the_run_with_its_cause() -> None:
    with pytest.raises(RuntimeError, match="seven"):
        LocalStreamingEngine(queue_size=2).run([Boom("x", 1, 2)], range(20), lambda _: None)


def test_streaming_engine_overlaps_steps() -> None:
    """Step b finishes item 0 while step a still holds item 5: the steps run concurrently."""
    b_saw_first = threading.Event()
    overlapped: list[bool] = []

    class A(Square):
        def process(self, batch: list[int]) -> list[int]:
            if 5 in batch:
                overlapped.append(b_saw_first.wait(timeout=10))
            return batch

    class B(Square):
        def process(self, batch: list[int]) -> list[int]:
            if 0 in batch:
                b_saw_first.set()
            return batch

    out: list[int] = []
    LocalStreamingEngine(queue_size=2).run([A("a", 1, 1), B("b", 1, 1)], range(10), out.append)
    assert overlapped == [True]
    assert sorted(out) == list(range(10))
