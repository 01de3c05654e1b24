"""Runs the steps on Ray Data, on this machine or a cluster, unchanged.

The input is cut into partitions (``partition_size`` items, about 1,000 by default), each
put in the object store as one block as soon as it is cut, so the driver holds one
partition at a time. One Dataset over all the blocks runs every step as a
``map_batches`` over an actor pool (``setup()`` once per actor for the whole run, the
step's batch size, ``num_cpus`` / ``num_gpus`` from the step's declared resources, up to
``workers`` actors): the pools start once, not once per partition, which on a million
clips is the difference between loading every model once and a thousand times. Each
clip leaves a step as a block of its own, so the steps work on a partition at the same
time, as the local engine's threads do. Finished items stream back to the driver, which
hands them to the sink as they come, so the run folder's clip-level resume applies
unchanged: a killed driver or a lost worker costs at most the clips in flight, and a
resubmitted job skips every finished clip while the stage cache serves the rest.

Consecutive steps named in one of ``groups`` share an actor: a clip crosses fewer
processes. That pays where cores are few and the steps are cheap; on a cluster each step
in a pool of its own pipelines better.

Steps must pickle (every stage does before ``setup()``; ``tests/test_stage_pickling.py``)
and must not raise for a bad item, as for every engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import numpy as np

from fusionaudio.engine.base import EngineStats, ProgressFn, Step, StepStats

T = TypeVar("T")
COLUMN = "item"


def _column(items: list[Any]) -> np.ndarray:
    """An object column; assigned one by one so that numpy never unpacks an item."""
    column = np.empty(len(items), dtype=object)
    for index, item in enumerate(items):
        column[index] = item
    return column


class _StepActor:
    """One Ray actor holding one step, set up once."""

    def __init__(self, step: Step[Any]) -> None:
        self.step = step
        step.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {COLUMN: _column(self.step.process(list(batch[COLUMN])))}


@dataclass(frozen=True)
class _Share:
    cpus: float
    gpus: float


class _Chain:
    """Consecutive steps run one after another in one actor. Each step still gets
    batches of its own size; the chain asks for the most any of them declares, since
    they never run at the same time."""

    def __init__(self, steps: Sequence[Step[Any]]) -> None:
        self.steps = list(steps)
        self.name = "+".join(step.name for step in steps)
        self.batch_size = max(step.batch_size for step in steps)
        self.workers = max(step.workers for step in steps)
        cpus, gpus = zip(*(_declared(step) for step in steps), strict=True)
        self.resources = _Share(max(cpus), max(gpus))

    def setup(self) -> None:
        for step in self.steps:
            step.setup()

    def teardown(self) -> None:
        for step in self.steps:
            step.teardown()

    def process(self, batch: list[Any]) -> list[Any]:
        for step in self.steps:
            size = max(1, step.batch_size)
            batch = [
                out for i in range(0, len(batch), size) for out in step.process(batch[i : i + size])
            ]
        return batch


def grouped(steps: list[Step[T]], groups: Sequence[Sequence[str]]) -> list[Step[T]]:
    """The steps with each group's members chained into one step. A group's names that
    are not steps of this run (a stage switched off) are skipped; the rest must follow
    one another, in order."""
    names = [step.name for step in steps]
    starts: dict[int, int] = {}
    for group in groups:
        present = [name for name in group if name in names]
        if len(present) < 2:
            continue
        first = names.index(present[0])
        if names[first : first + len(present)] != present:
            raise ValueError(
                f"engine.actor_groups: {', '.join(present)} are not consecutive steps of this "
                f"run, in that order (the steps: {', '.join(names)})"
            )
        starts[first] = len(present)
    out: list[Step[T]] = []
    index = 0
    while index < len(steps):
        length = starts.get(index, 1)
        out.append(steps[index] if length == 1 else _Chain(steps[index : index + length]))
        index += length
    return out


class RayDataEngine:
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        partition_size: int = 1000,
        init_options: dict[str, Any] | None = None,
        timings: Callable[[Any], dict[str, float]] | None = None,
        groups: Sequence[Sequence[str]] = (),
    ) -> None:
        self.address = address
        self.partition_size = partition_size
        self.groups = groups
        self.init_options = init_options or {}
        # How to read a finished item's per-step seconds (the actors' clocks live there).
        self.timings = timings

    def _connect(self) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     **self.init_options)  # fmt: skip
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.verbose_progress = False

    def _dataset(
        self, steps: list[Step[T]], items: Iterable[T], shares: list[tuple[float, float]]
    ) -> Any:
        import pandas as pd
        import ray

        blocks: list[Any] = [
            ray.put(pd.DataFrame({COLUMN: _column(partition)}))
            for partition in _partitions(items, self.partition_size)
        ]
        dataset: Any = ray.data.from_pandas_refs(blocks)
        for step, (cpus, gpus) in zip(steps, shares, strict=True):
            # Every actor from the start: models load while the first clips decode, not
            # when the autoscaler notices a queue.
            workers = max(1, step.workers)
            pool = ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers)
            dataset = dataset.map_batches(
                _StepActor,
                fn_constructor_args=(step,),
                batch_size=step.batch_size,
                batch_format="numpy",
                zero_copy_batch=False,
                compute=pool,
                num_cpus=cpus,
                num_gpus=gpus or None,
            )
        # Ray Data gathers a task's output into blocks of up to 128 MiB: a partition would
        # leave each step as one block, after its last clip, and the steps would take
        # turns. With every output over the limit, each clip leaves as a block of its own
        # and the next step starts on it at once (its bundler regroups its batch size).
        dataset.context.target_max_block_size = 1
        return dataset

    def _cluster(self) -> dict[str, float]:
        import ray

        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return {k: float(v) for k, v in resources.items()}

    def run(
        self,
        steps: list[Step[T]],
        items: Iterable[T],
        sink: Callable[[T], None],
        progress: ProgressFn | None = None,
    ) -> EngineStats:
        started = time.perf_counter()
        self._connect()
        stats = EngineStats(steps={step.name: StepStats() for step in steps})
        actors = grouped(steps, self.groups)
        dataset = self._dataset(actors, items, _shares(actors, self._cluster()))
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for item in batch[COLUMN]:
                seconds = self.timings(item) if self.timings is not None else {}
                for step in steps:
                    record = stats.steps[step.name]
                    record.items += 1
                    record.busy_s += seconds.get(step.name, 0.0)
                    if progress is not None:
                        progress(step.name, 1)
                sink(item)
        stats.wall_s = time.perf_counter() - started
        return stats


def _shares(steps: list[Step[T]], cluster: dict[str, float]) -> list[tuple[float, float]]:
    """Each step's (CPUs, GPUs) per actor: as declared, scaled down to fit the cluster.

    Ray Data starts at least one actor per step; if their declared CPUs (or GPUs) add up
    to more than the cluster has, the later steps never get an actor and the run waits
    forever. CPUs are scaled so that every step's ``workers`` actors fit at once: the
    actors then share the cores, as the local engine's threads do, and a step given two
    workers gets them (fitting one actor per step left a second Spleeter actor unplaced
    on 2 cores, and separation the bottleneck). GPUs are scaled only as far as one actor
    per step needs: two actors on one GPU would also share its memory, which a declared
    GPU promises the stage.
    """
    declared = [(*_declared(s), max(1, s.workers)) for s in steps]
    cpu_scale = _fit(sum(cpus * workers for cpus, _, workers in declared), cluster.get("CPU"))
    gpu_scale = _fit(sum(gpus for _, gpus, _ in declared), cluster.get("GPU"))
    return [(cpus * cpu_scale, gpus * gpu_scale) for cpus, gpus, _ in declared]


def _declared(step: Step[Any]) -> tuple[float, float]:
    """(CPUs, GPUs) a step's actor asks for: its stage's declared resources, or one CPU."""
    resources = getattr(step, "resources", None)
    return float(getattr(resources, "cpus", 1.0)), float(getattr(resources, "gpus", 0.0))


def _fit(total: float, available: float | None) -> float:
    return min(1.0, available / total) if total > 0 and available else 1.0


def _partitions(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while partition := list(islice(iterator, size)):
        yield partition
