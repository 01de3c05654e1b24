"""Voice activity: how much of the clip is speech, and where.

Speech recognition trusts this gate: Whisper invents text on music, so ASR runs only
where this expert found speech.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.silero_vad_onnx import SileroVadOnnx
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, Resources, Stage, StageInput
from fusionaudio.stages.settings import BuildContext, RoleConfig, known_name


@runtime_checkable
class VadBackend(Protocol):
    name: str
    model_id: str
    revision: str
    frame_s: float

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def speech_probabilities(self, batch: list[np.ndarray]) -> list[np.ndarray]: ...


def _silero(settings: VadConfig) -> VadBackend:
    return SileroVadOnnx(threads=settings.threads)


# backend name (the config's ``experts.vad.backend``) -> the backend, not yet loaded
VAD_BACKENDS: dict[str, Callable[[VadConfig], VadBackend]] = {"silero_onnx": _silero}


class VadConfig(RoleConfig):
    backend: str = "silero_onnx"
    threshold: float = Field(0.5, gt=0, lt=1)
    min_speech_s: float = Field(0.25, ge=0)
    min_silence_s: float = Field(0.1, ge=0)
    batch_size: int = Field(8, ge=1)
    workers: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("vad backend", name, VAD_BACKENDS)

    def build(self, context: BuildContext) -> VadStage:
        return VadStage(self)


def speech_segments(
    probs: np.ndarray,
    frame_s: float,
    threshold: float,
    min_speech_s: float,
    min_silence_s: float,
) -> list[tuple[float, float]]:
    """Hysteresis segmentation: enter at ``threshold``, leave 0.15 below it; merge short gaps."""
    leave = max(0.0, threshold - 0.15)
    raw: list[list[float]] = []
    start: float | None = None
    for i, p in enumerate(probs):
        t = i * frame_s
        if start is None and p >= threshold:
            start = t
        elif start is not None and p < leave:
            raw.append([start, t])
            start = None
    if start is not None:
        raw.append([start, len(probs) * frame_s])
    merged: list[list[float]] = []
    for seg in raw:
        if merged and seg[0] - merged[-1][1] < min_silence_s:
            merged[-1][1] = seg[1]
        else:
            merged.append(seg)
    return [(round(a, 3), round(b, 3)) for a, b in merged if b - a >= min_speech_s]


class VadStage(Stage):
    name = "vad"
    needs = (AUDIO_16K_MONO,)
    produces = "vad"

    def __init__(self, settings: VadConfig) -> None:
        self.settings = settings
        self.backend_name = settings.backend
        self.threshold = settings.threshold
        self.min_speech_s = settings.min_speech_s
        self.min_silence_s = settings.min_silence_s
        self.batch_size = settings.batch_size
        self.workers = settings.workers
        self.resources = Resources(cpus=settings.threads)
        self._backend: VadBackend | None = None

    def _make(self) -> VadBackend:
        return VAD_BACKENDS[self.backend_name](self.settings)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "model": self._make().fingerprint(),
            "threshold": self.threshold,
            "min_speech_s": self.min_speech_s,
            "min_silence_s": self.min_silence_s,
        }

    def setup(self) -> None:
        self._backend = self._make()
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("VadStage.setup() was not called")
        started = time.perf_counter()
        signals = [item.audio(AUDIO_16K_MONO).samples[0] for item in batch]
        all_probs = backend.speech_probabilities(signals)
        per_clip = (time.perf_counter() - started) / max(1, len(batch))
        cues = []
        for signal, probs in zip(signals, all_probs, strict=True):
            duration = len(signal) / 16_000
            segments = speech_segments(
                probs, backend.frame_s, self.threshold, self.min_speech_s, self.min_silence_s
            )
            speech_s = sum(b - a for a, b in segments)
            cues.append(
                self.cue(
                    backend,
                    {
                        "has_speech": bool(segments),
                        "speech_fraction": round(min(1.0, speech_s / duration), 4)
                        if duration > 0
                        else 0.0,
                        "speech_s": round(speech_s, 3),
                        "segments": [[a, b] for a, b in segments],
                        "max_probability": round(float(np.max(probs)), 4) if len(probs) else 0.0,
                    },
                    per_clip,
                )
            )
        return cues
