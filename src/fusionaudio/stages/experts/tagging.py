"""AudioSet tags with confidences, an event timeline patch by patch, and the sound sources.

The fusion stage trusts high-confidence tags most (the paper's trust order), and the
music gate reads the music classes from ``posteriors``. ``sources`` is the decision of
which sources are really there (``backends/sound_sources.py``, docs/cues/sources.md):
ontology families with timed segments, accepted or rejected with a reason, and a count
of repetitions for event-like sources.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from fusionaudio.backends.sound_sources import SOURCES_VERSION, sound_sources
from fusionaudio.backends.yamnet_onnx import Precision, YamnetOnnx
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, Resources, Stage, StageInput


@runtime_checkable
class TaggerBackend(Protocol):
    name: str
    model_id: str
    revision: str
    labels: list[str]
    patch_len_s: float
    patch_hop_s: float

    def setup(self) -> None: ...

    def patch_scores(self, signal: np.ndarray) -> np.ndarray: ...


def _yamnet(models_dir: Path, threads: int, precision: Precision) -> TaggerBackend:
    return YamnetOnnx(models_dir=models_dir, threads=threads, precision=precision)


TAGGER_BACKENDS = {"yamnet_onnx": (_yamnet, YamnetOnnx.fingerprint)}


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

    def __init__(
        self,
        models_dir: Path,
        backend: str = "yamnet_onnx",
        top_k: int = 10,
        timeline_top_k: int = 3,
        timeline_min_confidence: float = 0.1,
        posterior_min: float = 0.01,
        batch_size: int = 8,
        workers: int = 1,
        threads: int = 1,
        precision: Precision = "float32",
    ) -> None:
        if backend not in TAGGER_BACKENDS:
            raise ValueError(
                f"unknown tagging backend {backend!r}; known: {sorted(TAGGER_BACKENDS)}"
            )
        self.models_dir = models_dir
        self.backend_name = backend
        self.top_k = top_k
        self.timeline_top_k = timeline_top_k
        self.timeline_min_confidence = timeline_min_confidence
        self.posterior_min = posterior_min
        self.batch_size = batch_size
        self.workers = workers
        self.threads = threads
        self.precision: Precision = precision
        self.resources = Resources(cpus=threads)
        self._backend: TaggerBackend | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "model": TAGGER_BACKENDS[self.backend_name][1](self.precision),
            "top_k": self.top_k,
            "timeline_top_k": self.timeline_top_k,
            "timeline_min_confidence": self.timeline_min_confidence,
            "posterior_min": self.posterior_min,
            "sources_version": SOURCES_VERSION,
        }

    def setup(self) -> None:
        self._backend = TAGGER_BACKENDS[self.backend_name][0](
            self.models_dir, self.threads, self.precision
        )
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("TaggingStage.setup() was not called")
        cues = []
        for item in batch:
            started = time.perf_counter()
            audio = item.audio(AUDIO_16K_MONO)
            scores = backend.patch_scores(audio.samples[0])
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
            cues.append(self.cue(backend, output, time.perf_counter() - started))
        return cues
