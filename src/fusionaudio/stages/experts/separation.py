"""Track separation: the vocal track and the accompaniment, once per clip.

Speech recognition listens to the vocal stem (music under speech confuses Whisper);
the stems' energies also tell fusion whether a voice stands out from the background.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

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


@runtime_checkable
class SeparatorBackend(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def separate(self, stereo_44k: np.ndarray) -> dict[str, np.ndarray]: ...


def _backend(
    name: str, threads: int, model_path: Path | None, model_name: str, device: str
) -> SeparatorBackend:
    if name == "spleeter_torch":
        return SpleeterTorch(threads=threads)
    if name == "htdemucs":
        if model_path is None:
            raise ValueError("the htdemucs backend needs model_path (a .th file or a model repo)")
        return HTDemucsTorch(model_path, model_name=model_name, device=device, threads=threads)
    raise ValueError(f"unknown separation backend {name!r}; known: spleeter_torch, htdemucs")


class SeparationStage(Stage):
    name = "separation"
    needs = (AUDIO_44K_STEREO,)
    produces = "separation"
    provides_views = (VOCALS_16K, ACCOMPANIMENT_16K)

    def __init__(
        self,
        backend: str = "spleeter_torch",
        model_path: Path | None = None,
        model_name: str = "htdemucs",
        device: str = "cpu",
        batch_size: int = 1,
        workers: int = 1,
        threads: int = 1,
    ) -> None:
        self.backend_name = backend
        self.model_path = model_path
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.workers = workers
        self.threads = threads
        self.resources = Resources(cpus=threads, gpus=1.0 if device.startswith("cuda") else 0.0)
        self._backend: SeparatorBackend | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self.backend_name == "spleeter_torch":
            model = SpleeterTorch.fingerprint()
        else:
            model = {"model_path": str(self.model_path), "model_name": self.model_name}
        return {"backend": self.backend_name, "model": model}

    def setup(self) -> None:
        self._backend = _backend(
            self.backend_name, self.threads, self.model_path, self.model_name, self.device
        )
        self._backend.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[StageOutput]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("SeparationStage.setup() was not called")
        outputs = []
        for item in batch:
            started = time.perf_counter()
            mix = item.audio(AUDIO_44K_STEREO)
            stems = backend.separate(mix.samples)
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
            cue = self.cue(backend, output, time.perf_counter() - started)
            outputs.append(StageOutput(cue, {VOCALS_16K: vocals, ACCOMPANIMENT_16K: rest}))
        return outputs
