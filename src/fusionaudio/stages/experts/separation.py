"""Track separation: the vocal track and the accompaniment, once per clip.

Speech recognition listens to the vocal stem (music under speech confuses Whisper);
the stems' energies also tell fusion whether a voice stands out from the background.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.htdemucs_torch import HTDemucsTorch
from fusionaudio.backends.spleeter_torch import SpleeterTorch
from fusionaudio.media.audio import AudioView, loudness
from fusionaudio.stages.base import (
    ACCOMPANIMENT_16K,
    AUDIO_44K_STEREO,
    VOCALS_16K,
    Resources,
    Stage,
    StageInput,
    StageOutput,
)
from fusionaudio.stages.settings import (
    BatchSize,
    BuildContext,
    RoleConfig,
    batch_size_for,
    known_name,
)


@runtime_checkable
class SeparatorBackend(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def separate(self, stereo_44k: np.ndarray) -> dict[str, np.ndarray]: ...

    def separate_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]: ...


def _spleeter(settings: SeparationConfig) -> SeparatorBackend:
    return SpleeterTorch(threads=settings.threads)


def _htdemucs(settings: SeparationConfig) -> SeparatorBackend:
    if settings.model_path is None:
        raise ValueError("the htdemucs backend needs model_path (a .th file or a model repo)")
    return HTDemucsTorch(
        settings.model_path,
        model_name=settings.model_name,
        device=settings.device,
        threads=settings.threads,
    )


# backend name (``experts.separation.backend``) -> the backend, not yet loaded
SEPARATION_BACKENDS: dict[str, Callable[[SeparationConfig], SeparatorBackend]] = {
    "spleeter_torch": _spleeter,
    "htdemucs": _htdemucs,
}


class SeparationConfig(RoleConfig):
    backend: str = "spleeter_torch"
    model_path: Path | None = Field(None, description="htdemucs: a .th file or a local model repo")
    model_name: str = Field("htdemucs", description="htdemucs: the bag to load from a repo folder")
    device: str = "cpu"
    batch_size: BatchSize = None
    workers: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("separation backend", name, SEPARATION_BACKENDS)

    def build(self, context: BuildContext) -> SeparationStage:
        return SeparationStage(self)


class SeparationStage(Stage):
    name = "separation"
    needs = (AUDIO_44K_STEREO,)
    produces = "separation"
    provides_views = (VOCALS_16K, ACCOMPANIMENT_16K)

    def __init__(self, settings: SeparationConfig) -> None:
        self.settings = settings
        self.backend_name = settings.backend
        self.workers = settings.workers
        self.batch_size = batch_size_for(settings.batch_size, settings.device)
        self.resources = Resources(
            cpus=settings.threads, gpus=1.0 if settings.device.startswith("cuda") else 0.0
        )
        self._backend: SeparatorBackend | None = None

    def _make(self) -> SeparatorBackend:
        return SEPARATION_BACKENDS[self.backend_name](self.settings)

    def fingerprint(self) -> dict[str, Any]:
        model: dict[str, str]
        if self.backend_name == "htdemucs":
            # Keyed by the configured path and bag, not by the weights' content (which
            # HTDemucsTorch.fingerprint has): the key existing runs' caches were written with.
            model = {
                "model_path": str(self.settings.model_path),
                "model_name": self.settings.model_name,
            }
        else:
            model = self._make().fingerprint()
        return {"backend": self.backend_name, "model": model}

    def setup(self) -> None:
        self._backend = self._make()
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[StageOutput]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("SeparationStage.setup() was not called")
        started = time.perf_counter()
        mixes = [item.audio(AUDIO_44K_STEREO) for item in batch]
        separated = backend.separate_batch([mix.samples for mix in mixes])
        share = (time.perf_counter() - started) / max(1, len(batch))
        outputs = []
        for mix, stems in zip(mixes, separated, strict=True):
            began = time.perf_counter()
            vocals = AudioView(stems["vocals"], mix.sample_rate).mono().resample(16_000)
            rest = AudioView(stems["accompaniment"], mix.sample_rate).mono().resample(16_000)
            v_energy = float(np.sum(np.square(vocals.samples, dtype=np.float64)))
            a_energy = float(np.sum(np.square(rest.samples, dtype=np.float64)))
            output = {
                "stems": ["vocals", "accompaniment"],
                "vocals_rms_dbfs": round(loudness(vocals).rms_dbfs, 2),
                "accompaniment_rms_dbfs": round(loudness(rest).rms_dbfs, 2),
                "vocals_energy_share": round(v_energy / (v_energy + a_energy), 4)
                if v_energy + a_energy > 0
                else 0.0,
            }
            cue = self.cue(backend, output, share + time.perf_counter() - began)
            outputs.append(StageOutput(cue, {VOCALS_16K: vocals, ACCOMPANIMENT_16K: rest}))
        return outputs
