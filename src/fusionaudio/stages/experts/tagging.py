"""AudioSet tags with confidences, an event timeline patch by patch, and the sound sources.

The fusion stage trusts high-confidence tags most (the paper's trust order), and the
music gate reads the music classes from ``posteriors``. ``sources`` is the decision of
which sources are really there (``backends/sound_sources.py``, docs/cues/sources.md):
ontology families with timed segments, accepted or rejected with a reason, and a count
of repetitions for event-like sources.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.sound_sources import SOURCES_VERSION, sound_sources
from fusionaudio.backends.yamnet_onnx import YamnetOnnx
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, Resources, Stage, StageInput
from fusionaudio.stages.settings import BuildContext, RoleConfig, known_name


@runtime_checkable
class TaggerBackend(Protocol):
    name: str
    model_id: str
    revision: str
    labels: list[str]
    patch_len_s: float
    patch_hop_s: float

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def patch_scores(self, signal: np.ndarray) -> np.ndarray: ...

    def patch_scores_batch(self, signals: Sequence[np.ndarray]) -> list[np.ndarray]: ...


def _yamnet(settings: TaggingConfig, models_dir: Path) -> TaggerBackend:
    return YamnetOnnx(models_dir=models_dir, threads=settings.threads, precision=settings.precision)


# backend name (``experts.tagging.backend``) -> the backend, not yet loaded
TAGGER_BACKENDS: dict[str, Callable[[TaggingConfig, Path], TaggerBackend]] = {
    "yamnet_onnx": _yamnet
}


class TaggingConfig(RoleConfig):
    backend: str = "yamnet_onnx"
    precision: Literal["float32", "int8"] = Field(
        "float32",
        description="float32: the shipped w8a8 YAMNet turned into its float network (better "
        "tags, batched); int8: the shipped graph as is",
    )
    top_k: int = Field(10, ge=1)
    timeline_top_k: int = Field(3, ge=1)
    timeline_min_confidence: float = Field(0.1, ge=0, le=1)
    posterior_min: float = Field(0.01, ge=0, le=1)
    batch_size: int = Field(8, ge=1)
    workers: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("tagging backend", name, TAGGER_BACKENDS)

    def build(self, context: BuildContext) -> TaggingStage:
        return TaggingStage(self, context)


def summarise_scores(
    scores: np.ndarray,
    labels: list[str],
    patch_len_s: float,
    patch_hop_s: float,
    duration_s: float,
    top_k: int,
    timeline_top_k: int,
    timeline_min_confidence: float,
    posterior_min: float,
) -> dict[str, Any]:
    """Clip-level tags (mean over patches) plus the per-patch timeline."""
    clip = scores.mean(axis=0)
    order = np.argsort(-clip)
    top = [
        {"label": labels[i], "index": int(i), "confidence": round(float(clip[i]), 4)}
        for i in order[:top_k]
    ]
    timeline = []
    for row, patch in enumerate(scores):
        start = row * patch_hop_s
        best = np.argsort(-patch)[:timeline_top_k]
        timeline.append(
            {
                "start_s": round(start, 3),
                "end_s": round(min(duration_s, start + patch_len_s), 3),
                "tags": [
                    {"label": labels[i], "confidence": round(float(patch[i]), 4)}
                    for i in best
                    if patch[i] >= timeline_min_confidence
                ],
            }
        )
    posteriors = {labels[i]: round(float(clip[i]), 4) for i in order if clip[i] >= posterior_min}
    return {"top_tags": top, "timeline": timeline, "posteriors": posteriors}


class TaggingStage(Stage):
    name = "tagging"
    needs = (AUDIO_16K_MONO,)
    produces = "tagging"

    def __init__(self, settings: TaggingConfig, context: BuildContext | None = None) -> None:
        self.settings = settings
        self.models_dir = (context or BuildContext()).models_dir
        self.backend_name = settings.backend
        self.top_k = settings.top_k
        self.timeline_top_k = settings.timeline_top_k
        self.timeline_min_confidence = settings.timeline_min_confidence
        self.posterior_min = settings.posterior_min
        self.batch_size = settings.batch_size
        self.workers = settings.workers
        self.resources = Resources(cpus=settings.threads)
        self._backend: TaggerBackend | None = None

    def _make(self) -> TaggerBackend:
        return TAGGER_BACKENDS[self.backend_name](self.settings, self.models_dir)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "model": self._make().fingerprint(),
            "top_k": self.top_k,
            "timeline_top_k": self.timeline_top_k,
            "timeline_min_confidence": self.timeline_min_confidence,
            "posterior_min": self.posterior_min,
            "sources_version": SOURCES_VERSION,
        }

    def setup(self) -> None:
        self._backend = self._make()
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("TaggingStage.setup() was not called")
        started = time.perf_counter()
        audios = [item.audio(AUDIO_16K_MONO) for item in batch]
        all_scores = backend.patch_scores_batch([audio.samples[0] for audio in audios])
        share = (time.perf_counter() - started) / max(1, len(batch))
        cues = []
        for audio, scores in zip(audios, all_scores, strict=True):
            began = time.perf_counter()
            output = summarise_scores(
                scores,
                backend.labels,
                backend.patch_len_s,
                backend.patch_hop_s,
                audio.duration_s,
                self.top_k,
                self.timeline_top_k,
                self.timeline_min_confidence,
                self.posterior_min,
            )
            output["sources"] = sound_sources(
                scores,
                backend.labels,
                backend.patch_len_s,
                backend.patch_hop_s,
                audio.duration_s,
                audio.samples[0],
                audio.sample_rate,
            )
            cues.append(self.cue(backend, output, share + time.perf_counter() - began))
        return cues
