"""HT-Demucs (the paper's separator) from a local checkpoint, through the ``demucs`` package.

``model_path`` is either one serialised model (``<signature>.th``, the format demucs
writes) or a local model repository folder holding ``<name>.yaml`` bags and their
``.th`` files, with ``model_name`` naming the bag (for example ``htdemucs``). Nothing
is fetched: a repository folder is read through demucs' local-repo code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version, sha256_file
from fusionaudio.backends.model_identity import content_identity


class HTDemucsTorch:
    name = "htdemucs"

    def __init__(
        self,
        model_path: Path,
        model_name: str = "htdemucs",
        device: str = "cpu",
        threads: int = 1,
        shifts: int = 0,
        overlap: float = 0.25,
    ) -> None:
        self.model_path = Path(model_path)
        self.model_name = model_name
        self.device = device
        self.threads = threads
        self.shifts = shifts
        self.overlap = overlap
        self.model_id = (
            f"demucs:{model_name}" if self.model_path.is_dir() else f"demucs:{self.model_path.name}"
        )
        self.revision = "not-loaded"
        self._model: Any = None
        self.stems = ("vocals", "accompaniment")

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"demucs=={package_version('demucs')}",
            "model_path": str(self.model_path),
            "weights": content_identity(self.model_path),
            "model_name": self.model_name,
            "shifts": str(self.shifts),
            "overlap": str(self.overlap),
        }

    def setup(self) -> None:
        import torch
        from demucs.pretrained import get_model
        from demucs.states import load_model

        torch.set_num_threads(self.threads)
        if self.model_path.is_file():
            model = load_model(self.model_path)
            self.revision = "sha256:" + sha256_file(self.model_path)[:16]
        elif self.model_path.is_dir():
            model = get_model(self.model_name, repo=self.model_path)
            self.revision = f"local-repo:{self.model_name}"
        else:
            raise FileNotFoundError(f"HT-Demucs checkpoint not found: {self.model_path}")
        if "vocals" not in model.sources:
            raise ValueError(f"model sources {model.sources} have no 'vocals' stem")
        model.eval()
        self._model = model.to(self.device)

    @property
    def sample_rate(self) -> int:
        return int(self._model.samplerate) if self._model is not None else 44_100

    def separate(self, stereo_44k: np.ndarray) -> dict[str, np.ndarray]:
        """(2, n) float32 at the model rate -> vocals and the sum of every other source."""
        return self.separate_batch([stereo_44k])[0]

    def separate_batch(self, batch: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Each clip's stems. Clips of the same length go through ``apply_model`` as one
        tensor; clips are not padded to a common length, because HT-Demucs attends across
        its whole segment and zeros after a clip's end would change its stems."""
        if self._model is None:
            raise RuntimeError("HTDemucsTorch.setup() was not called")
        by_length: dict[int, list[int]] = {}
        for i, clip in enumerate(batch):
            by_length.setdefault(clip.shape[-1], []).append(i)
        out: list[dict[str, np.ndarray]] = [{} for _ in batch]
        for indices in by_length.values():
            for i, stems in zip(
                indices, self._separate_same_length([batch[i] for i in indices]), strict=True
            ):
                out[i] = stems
        return out

    def _separate_same_length(self, clips: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
        import torch
        from demucs.apply import apply_model

        mix = torch.from_numpy(np.stack([np.asarray(c, dtype=np.float32) for c in clips]))
        ref = mix.mean(1)  # (B, n)
        mean = ref.mean(1)[:, None, None]
        std = ref.std(1)[:, None, None] + 1e-8
        with torch.inference_mode():
            sources = apply_model(
                self._model,
                ((mix - mean) / std).to(self.device),
                shifts=self.shifts,
                split=True,
                overlap=self.overlap,
                progress=False,
            )  # (B, S, 2, n)
        stems = (sources.cpu() * std[:, None] + mean[:, None]).numpy().astype(np.float32)
        names = list(self._model.sources)
        vocal = names.index("vocals")
        others = [i for i, n in enumerate(names) if n != "vocals"]
        return [
            {"vocals": clip[vocal], "accompaniment": clip[others].sum(axis=0).astype(np.float32)}
            for clip in stems
        ]
