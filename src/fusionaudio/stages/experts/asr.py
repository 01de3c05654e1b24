"""Speech recognition on the vocal track, gated by voice activity.

Whisper invents text on music and noise, so it runs only on clips where the VAD cue
found speech; the rest get a cue that says why there is no transcript. What it writes is
then screened for hallucinations (``asr_filter.py``) before any later stage reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper
from fusionaudio.backends.whisper_transformers import TransformersWhisper
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, VOCALS_16K, Resources, Stage, StageInput
from fusionaudio.stages.experts.asr_filter import FILTER_VERSION, screen_transcript
from fusionaudio.stages.settings import (
    BatchSize,
    BuildContext,
    RoleConfig,
    batch_size_for,
    known_name,
)

# faster-whisper's compute type when none is configured. On CPU chosen by measurement
# (benchmarks/bench_asr.py, docs/benchmarks.md): over every speech clip with known text,
# raw and vocal stem, float32 with greedy decoding had the lowest WER on the vocal stem
# the default transcribes, and unquantised weights do not flip words with the CPU's
# instruction set as int8 does (speech_fox.wav: 0.056 or 0.22).
CPU_COMPUTE_TYPE = "float32"
GPU_COMPUTE_TYPE = "float16"
DEFAULT_BEAM_SIZE = 1
# Clips handed to the backend at once when none is configured. On a GPU both backends
# decode a batch together (transformers: one padded ``generate``; faster-whisper: one
# CTranslate2 encode and ``generate`` over the clips' first windows). 16 is a first
# choice, not yet a measured optimum (benchmarks/bench_whisper_gpu.py compares 1, 8 and
# 16). On this project's 2-core CPU faster-whisper batched 4 clips of speech at 1.08x
# one at a time, but clips that need the temperature fallback are decoded twice
# (benchmarks/bench_batching.py), so a CPU transcribes one clip at a time.
GPU_BATCH_SIZE = 16
CPU_BATCH_SIZE = 1


@runtime_checkable
class AsrBackend(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def transcribe(self, signal_16k: np.ndarray) -> dict[str, Any]: ...


def transcribe_all(backend: AsrBackend, signals: list[np.ndarray]) -> list[dict[str, Any]]:
    """Every signal's transcript: in one call where the backend batches
    (``transcribe_batch``), else one clip at a time."""
    batched = getattr(backend, "transcribe_batch", None)
    if batched is not None and signals:
        results: list[dict[str, Any]] = batched(signals)
        if len(results) != len(signals):
            raise RuntimeError(
                f"{backend.name} returned {len(results)} transcripts for {len(signals)} clips"
            )
        return results
    return [backend.transcribe(signal) for signal in signals]


def _faster_whisper(settings: AsrConfig, models_dir: Path) -> AsrBackend:
    compute_type: str = settings.compute_type or (
        CPU_COMPUTE_TYPE if settings.device == "cpu" else GPU_COMPUTE_TYPE
    )
    return FasterWhisper(
        models_dir,
        None if settings.model is None else Path(settings.model),
        device=settings.device,
        compute_type=compute_type,
        threads=settings.threads,
        beam_size=settings.beam_size,
        language=settings.language,
    )


def _transformers_whisper(settings: AsrConfig, models_dir: Path) -> AsrBackend:
    if settings.model is None:
        raise ValueError("the transformers_whisper backend needs model (a folder or hub id)")
    return TransformersWhisper(
        settings.model, device=settings.device, language=settings.language, dtype=settings.dtype
    )


# backend name (``experts.asr.backend``) -> the backend, not yet loaded
ASR_BACKENDS: dict[str, Callable[[AsrConfig, Path], AsrBackend]] = {
    "faster_whisper": _faster_whisper,
    "transformers_whisper": _transformers_whisper,
}


class AsrConfig(RoleConfig):
    backend: str = "faster_whisper"
    model: str | None = Field(None, description="None: the packaged Whisper base")
    device: str = "cpu"
    beam_size: int = Field(DEFAULT_BEAM_SIZE, ge=1)
    compute_type: (
        Literal[
            "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16",
            "float16", "bfloat16", "float32",
        ]
        | None
    ) = Field(
        None,
        description="faster_whisper's CTranslate2 compute type; None: float32 on CPU, float16 on GPU",
    )  # fmt: skip
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None,
        description="transformers_whisper's torch dtype; None: bfloat16 on CUDA, float32 on CPU",
    )
    language: str | None = None
    min_speech_s: float = Field(0.3, ge=0)
    hallucination_filter: bool = Field(
        True, description="drop transcript segments that look hallucinated (asr_filter.py)"
    )
    batch_size: BatchSize = None  # None: 16 on CUDA, 1 on CPU
    workers: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("asr backend", name, ASR_BACKENDS)

    def build(self, context: BuildContext) -> AsrStage:
        return AsrStage(self, context)


class AsrStage(Stage):
    name = "asr"
    produces = "asr"

    def __init__(self, settings: AsrConfig, context: BuildContext | None = None) -> None:
        context = context or BuildContext()
        self.settings = settings
        self.models_dir = context.models_dir
        self.hallucination_filter = settings.hallucination_filter
        # Whisper on the vocal stem when separation runs: music under speech confuses it
        self.audio_view = VOCALS_16K if context.separated else AUDIO_16K_MONO
        self.needs = ("vad", self.audio_view)
        self.backend_name = settings.backend
        self.min_speech_s = settings.min_speech_s
        self.batch_size = batch_size_for(
            settings.batch_size, settings.device, cuda=GPU_BATCH_SIZE, cpu=CPU_BATCH_SIZE
        )
        self.workers = settings.workers
        self.resources = Resources(
            cpus=settings.threads, gpus=0.0 if settings.device == "cpu" else 1.0
        )
        self._backend: AsrBackend | None = None

    def _make(self) -> AsrBackend:
        return ASR_BACKENDS[self.backend_name](self.settings, self.models_dir)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "model": self._make().fingerprint(),
            "audio_view": self.audio_view,
            "min_speech_s": self.min_speech_s,
            "hallucination_filter": FILTER_VERSION if self.hallucination_filter else None,
        }

    def setup(self) -> None:
        self._backend = self._make()
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("AsrStage.setup() was not called")
        started = time.perf_counter()
        heard = [i for i, item in enumerate(batch) if self._has_speech(item)]
        results = transcribe_all(
            backend, [batch[i].audio(self.audio_view).samples[0] for i in heard]
        )
        transcripts = dict(zip(heard, results, strict=True))
        # decoded at once: each transcribed clip is given an equal share of the time
        elapsed = (time.perf_counter() - started) / max(len(heard), 1)
        cues = []
        for i in range(len(batch)):
            result = transcripts.get(i)
            if result is None:
                output: dict[str, Any] = {
                    "transcribed": False,
                    "reason": "no speech detected by voice activity",
                    "text": "",
                    "language": None,
                    "segments": [],
                }
            else:
                output = self._output(result)
            cues.append(self.cue(backend, output, elapsed if result is not None else 0.0))
        return cues

    def _has_speech(self, item: StageInput) -> bool:
        vad = item.cues["vad"].output
        return bool(vad.get("has_speech")) and vad.get("speech_s", 0.0) >= self.min_speech_s

    def _output(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.hallucination_filter:
            result = screen_transcript(result)
        logprobs = [s["avg_logprob"] for s in result["segments"] if s["avg_logprob"] is not None]
        no_speech = [
            s["no_speech_prob"] for s in result["segments"] if s["no_speech_prob"] is not None
        ]
        return {
            "transcribed": True,  # unless the screen rejected every segment
            **result,
            "words": len(result["text"].split()),
            "avg_logprob": round(float(np.mean(logprobs)), 4) if logprobs else None,
            "no_speech_prob": round(float(np.mean(no_speech)), 4) if no_speech else None,
            "audio_view": self.audio_view,
        }
