"""Speech recognition on the vocal track, gated by voice activity.

Whisper invents text on music and noise, so it runs only on clips where the VAD cue
found speech; the rest get a cue that says why there is no transcript. What it writes is
then screened for hallucinations (``asr_filter.py``) before any later stage reads it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper
from fusionaudio.backends.whisper_transformers import TransformersWhisper
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, Resources, Stage, StageInput
from fusionaudio.stages.experts.asr_filter import FILTER_VERSION, screen_transcript

# faster-whisper's compute type when none is configured. On CPU chosen by measurement
# (benchmarks/bench_asr.py, docs/benchmarks.md): over every speech clip with known text,
# raw and vocal stem, float32 with greedy decoding had the lowest WER on the vocal stem
# the default transcribes, and unquantised weights do not flip words with the CPU's
# instruction set as int8 does (speech_fox.wav: 0.056 or 0.22).
CPU_COMPUTE_TYPE = "float32"
GPU_COMPUTE_TYPE = "float16"
DEFAULT_BEAM_SIZE = 1
# Clips handed to the backend at once when none is configured. On a GPU the
# transformers backend decodes them in one padded ``generate`` call (16 is a first
# choice, not yet a measured optimum: benchmarks/bench_whisper_gpu.py compares 1, 8 and
# 16); on a CPU batching buys nothing, and faster-whisper transcribes one clip at a time.
GPU_BATCH_SIZE = 16
CPU_BATCH_SIZE = 1


def default_batch_size(device: str) -> int:
    return GPU_BATCH_SIZE if device.startswith("cuda") else CPU_BATCH_SIZE


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


def make_asr_backend(
    backend: str,
    models_dir: Path,
    model: str | None,
    device: str,
    threads: int,
    beam_size: int,
    language: str | None,
    compute_type: str | None = None,
    dtype: str | None = None,
) -> AsrBackend:
    if backend == "faster_whisper":
        if compute_type is None:
            compute_type = CPU_COMPUTE_TYPE if device == "cpu" else GPU_COMPUTE_TYPE
        return FasterWhisper(
            models_dir,
            None if model is None else Path(model),
            device=device,
            compute_type=compute_type,
            threads=threads,
            beam_size=beam_size,
            language=language,
        )
    if backend == "transformers_whisper":
        if model is None:
            raise ValueError("the transformers_whisper backend needs model (a folder or hub id)")
        return TransformersWhisper(model, device=device, language=language, dtype=dtype)
    raise ValueError(
        f"unknown asr backend {backend!r}; known: faster_whisper, transformers_whisper"
    )


class AsrStage(Stage):
    name = "asr"
    produces = "asr"

    def __init__(
        self,
        models_dir: Path,
        audio_view: str = AUDIO_16K_MONO,
        backend: str = "faster_whisper",
        model: str | None = None,
        device: str = "cpu",
        beam_size: int = DEFAULT_BEAM_SIZE,
        language: str | None = None,
        min_speech_s: float = 0.3,
        batch_size: int | None = None,
        workers: int = 1,
        threads: int = 1,
        compute_type: str | None = None,
        hallucination_filter: bool = True,
        dtype: str | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.hallucination_filter = hallucination_filter
        self.audio_view = audio_view
        self.needs = ("vad", audio_view)
        self.backend_name = backend
        self.model = model
        self.device = device
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.dtype = dtype
        self.language = language
        self.min_speech_s = min_speech_s
        self.batch_size = default_batch_size(device) if batch_size is None else batch_size
        self.workers = workers
        self.threads = threads
        self.resources = Resources(cpus=threads, gpus=0.0 if device == "cpu" else 1.0)
        self._backend: AsrBackend | None = None

    def _make(self) -> AsrBackend:
        return make_asr_backend(
            self.backend_name,
            self.models_dir,
            self.model,
            self.device,
            self.threads,
            self.beam_size,
            self.language,
            self.compute_type,
            self.dtype,
        )

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
