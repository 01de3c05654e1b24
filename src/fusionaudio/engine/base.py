"""The contract between the pipeline and an engine.

A step maps a batch of items to a batch of items and must not raise for a bad item
(the pipeline turns per-item failures into data). An exception out of a step is a bug
and stops the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

T = TypeVar("T")


class Step(Protocol[T]):
    name: str
    batch_size: int
    workers: int

    def setup(self) -> None: ...

    def process(self, batch: list[T]) -> list[T]: ...

    def teardown(self) -> None: ...


ProgressFn = Callable[[str, int], None]
"""Called with a step name and how many items it just finished."""


@dataclass
class StepStats:
    items: int = 0
    batches: int = 0
    busy_s: float = 0.0
    setup_s: float = 0.0


@dataclass
class EngineStats:
    steps: dict[str, StepStats] = field(default_factory=dict)
    wall_s: float = 0.0


class Engine(Protocol, Generic[T]):
    name: str

    def run(
        self,
        steps: list[Step[T]],
        items: Iterable[T],
        sink: Callable[[T], None],
        progress: ProgressFn | None = None,
    ) -> EngineStats: ...
