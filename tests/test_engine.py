from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fusionaudio.engine.local import LocalStreamingEngine, in_flight_limit
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


def _count_in_flight() -> tuple[Iterator[int], Callable[[int], None], list[int]]:
    """A source and a sink that record the most items ever between them."""
    produced = consumed = 0
    peak = [0]
    lock = threading.Lock()

    def source() -> Iterator[int]:
        nonlocal produced
        for i in range(400):
            yield i
            with lock:  # counted once the engine has taken it past its window
                produced += 1

    def sink(_: int) -> None:
        nonlocal consumed
        with lock:
            peak[0] = max(peak[0], produced - consumed)
            consumed += 1
        time.sleep(0.001)

    return source(), sink, peak


def test_streaming_engine_bounds_items_in_flight() -> None:
    """The source is held back by the window: memory does not grow with input size."""
    source, sink, peak = _count_in_flight()
    steps = [Square("a", 2, 2), Square("b", 2, 1, delay=0.002)]
    stats = LocalStreamingEngine(in_flight=6).run(steps, source, sink)
    assert stats.steps["b"].items == 400
    assert 4 <= peak[0] <= 6  # the window filled, and held


def test_by_default_the_window_is_what_the_steps_take_at_once_twice_over() -> None:
    source, sink, peak = _count_in_flight()
    steps = [Square("a", 8, 1), Square("b", 1, 2, delay=0.002)]
    assert in_flight_limit(steps) == 2 * 8 + 2 * 2
    LocalStreamingEngine().run(steps, source, sink)
    assert 10 <= peak[0] <= 20


def test_a_slow_item_does_not_hold_back_the_steps_before_it() -> None:
    """While the one-at-a-time step b is stuck on item 0 (as ASR is on a long speech
    clip), step a goes on with the items behind it: a backlog gathers in front of b,
    within the window, instead of a two-item inbox stopping a while the cores idle."""
    a_ran_ahead = threading.Event()

    class A(Square):
        def process(self, batch: list[int]) -> list[int]:
            if 12 in batch:
                a_ran_ahead.set()
            return batch

    class B(Square):
        def process(self, batch: list[int]) -> list[int]:
            if 0 in batch:
                self.delay = float(a_ran_ahead.wait(timeout=5))  # 1.0: a got there first
            return batch

    slow = B("b", 1, 1)
    out: list[int] = []
    LocalStreamingEngine().run([A("a", 8, 1), slow], range(30), out.append)  # window 18
    assert slow.delay == 1.0
    assert sorted(out) == list(range(30))


def test_a_step_that_drops_items_frees_their_places_in_the_window() -> None:
    """The window counts items, not admissions: items a step does not return free their
    places, else a window of two would close for good after two dropped items."""

    class Evens(Square):
        def process(self, batch: list[int]) -> list[int]:
            return [x for x in batch if x % 2 == 0]

    out: list[int] = []
    engine = LocalStreamingEngine(in_flight=2)
    run = threading.Thread(
        target=engine.run, args=([Evens("evens", 1, 1)], range(50), out.append), daemon=True
    )
    run.start()
    run.join(timeout=20)
    assert not run.is_alive(), "the window closed: the run stopped admitting items"
    assert out == list(range(0, 50, 2))


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
