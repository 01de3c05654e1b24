"""The Python API, for notebooks and training code: a ``Pipeline`` that loads its models once
and captions files, arrays or a ``datasets`` batch, without a run folder.

    from fusionaudio import Pipeline
    pipe = Pipeline.from_preset("offline")
    result = pipe.caption("dog.wav")            # a ClipResult: status, caption, qa, cues
    result = pipe.caption(samples, sample_rate=16_000)
    ds = ds.map(pipe.map_batch, batched=True, batch_size=8)   # adds caption/status/score
    pipe.run("clips/", out="runs/mine")          # what `fusionaudio run` does

Each call goes through the same steps, stage cache and sink as ``fusionaudio run`` (so a
result is the record a run would write); the cache lives in a temporary folder that
``close()`` (or leaving a ``with`` block) removes. Arrays are written to that folder as
float WAV files first: decoding, windowing and hashing then work exactly as for files.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import soundfile as sf

from fusionaudio.config import RunConfig, load_config
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.pipeline.run import RunSummary, decisions_for, pipeline_hash, run, to_result
from fusionaudio.pipeline.steps import LoadStep, StageStep, release_plan
from fusionaudio.pipeline.task import ClipTask
from fusionaudio.schema import Clip, ClipResult
from fusionaudio.store.stage_cache import StageCache

AudioInput = str | Path | np.ndarray


class Pipeline:
    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self._stages = build_stages(config)
        self._hash = pipeline_hash(config, self._stages)
        self._decisions = decisions_for(config)
        self._tmp = tempfile.TemporaryDirectory(prefix="fusionaudio-")
        self._cache = StageCache(Path(self._tmp.name) / "cache")
        self._steps: list[LoadStep | StageStep] | None = None
        self._counter = 0

    @classmethod
    def from_preset(cls, name: str = "offline") -> Pipeline:
        return cls(load_config(preset=name))

    @classmethod
    def from_config(cls, path: str | Path) -> Pipeline:
        return cls(load_config(Path(path)))

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the models and remove the temporary cache."""
        if self._steps is not None:
            for step in self._steps:
                step.teardown()
            self._steps = None
        self._tmp.cleanup()

    def _ready_steps(self) -> list[LoadStep | StageStep]:
        if self._steps is None:
            steps: list[LoadStep | StageStep] = [
                LoadStep(self._stages, self.config.media, self._cache, workers=1)
            ]
            steps += [
                StageStep(stage, self._cache, release)
                for stage, release in zip(self._stages, release_plan(self._stages), strict=True)
            ]
            for step in steps:
                step.setup()
            self._steps = steps
        return self._steps

    def _clip(self, audio: AudioInput, sample_rate: int | None, clip_id: str | None) -> Clip:
        self._counter += 1
        if isinstance(audio, np.ndarray):
            if sample_rate is None:
                raise ValueError("an array needs its sample_rate")
            samples = np.asarray(audio, dtype=np.float32)
            if samples.ndim == 2 and samples.shape[0] <= 8 < samples.shape[1]:
                samples = samples.T  # (channels, samples) -> (samples, channels)
            name = clip_id or f"array-{self._counter:06d}"
            path = Path(self._tmp.name) / "arrays" / f"{self._counter:06d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, sample_rate, subtype="FLOAT")
            return Clip(name, str(path))
        path = Path(audio)
        return Clip(clip_id or path.name, str(path.resolve()))

    def caption_many(
        self,
        audios: Sequence[AudioInput],
        sample_rate: int | Sequence[int | None] | None = None,
        clip_ids: Sequence[str] | None = None,
    ) -> list[ClipResult]:
        """One result per input, in order; the batch moves through each stage together.
        ``sample_rate`` is one rate for every array, or one per input."""
        ids = list(clip_ids) if clip_ids is not None else [None] * len(audios)
        rates = (
            [sample_rate] * len(audios)
            if sample_rate is None or isinstance(sample_rate, int)
            else list(sample_rate)
        )
        tasks = [
            ClipTask(clip=self._clip(audio, rate, clip_id))
            for audio, rate, clip_id in zip(audios, rates, ids, strict=True)
        ]
        for step in self._ready_steps():
            tasks = step.process(tasks)
        return [to_result(task, self._hash, self._decisions) for task in tasks]

    def caption(
        self, audio: AudioInput, sample_rate: int | None = None, clip_id: str | None = None
    ) -> ClipResult:
        """Caption one file or array: the record ``fusionaudio run`` would write for it."""
        return self.caption_many([audio], sample_rate, None if clip_id is None else [clip_id])[0]

    def run(self, inputs: str | Path, out: str | Path) -> RunSummary:
        """What ``fusionaudio run INPUTS --out OUT`` does (resumable run folder; ``out`` may
        be a URI such as ``s3://bucket/run``)."""
        return run(Path(inputs), out, self.config)

    def map_batch(self, batch: dict[str, list[Any]], audio_column: str = "audio") -> dict[str, Any]:
        """For ``datasets.Dataset.map(pipe.map_batch, batched=True)`` over an ``Audio``
        column: adds ``caption``, ``status``, ``clap_score`` and ``warnings`` columns."""
        audios: list[AudioInput] = []
        rates: list[int | None] = []
        for item in batch[audio_column]:
            array, rate = _decoded(item)
            audios.append(array)
            rates.append(rate)
        results = self.caption_many(audios, rates)
        return {
            **batch,
            "caption": [r.caption.text if r.caption else None for r in results],
            "status": [r.status for r in results],
            "clap_score": [r.scores.get("clap") for r in results],
            "warnings": [list(r.warnings) for r in results],
        }


def _decoded(item: Any) -> tuple[np.ndarray, int]:
    """A ``datasets`` Audio value (decoded dict, or undecoded bytes/path) as samples."""
    if isinstance(item, dict) and item.get("array") is not None:
        return np.asarray(item["array"], dtype=np.float32), int(item["sampling_rate"])
    if isinstance(item, dict) and item.get("bytes"):
        data, rate = sf.read(io.BytesIO(item["bytes"]), dtype="float32", always_2d=True)
        return data.T, int(rate)
    if isinstance(item, dict) and item.get("path"):
        data, rate = sf.read(item["path"], dtype="float32", always_2d=True)
        return data.T, int(rate)
    raise ValueError(f"not an Audio value: {type(item).__name__}")
