"""HT-Demucs (the paper's separator) from a local checkpoint, through the ``demucs`` package.

``model_path`` is either one serialised model (``<signature>.th``, the format demucs
writes) or a local model repository folder holding ``<name>.yaml`` bags and their
``.th`` files, with ``model_name`` naming the bag (for example ``htdemucs``). Nothing
is fetched: a repository folder is read through demucs' local-repo code path.
"""

from __future__ import annotations

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
        import torch
        from demucs.apply import apply_model

        if self._model is None:
            raise RuntimeError("HTDemucsTorch.setup() was not called")
        mix = torch.from_numpy(np.ascontiguousarray(stereo_44k, dtype=np.float32))
        ref = mix.mean(0)
        mean, std = ref.mean(), ref.std() + 1e-8
        with torch.inference_mode():
            sources = apply_model(
                self._model,
                ((mix - mean) / std)[None].to(self.device),
                shifts=self.shifts,
                split=True,
                overlap=self.overlap,
                progress=False,
            )[0]
        stems = (sources * std + mean).cpu().numpy().astype(np.float32)
        names = list(self._model.sources)
        vocals = stems[names.index("vocals")]
        rest = np.sum([stems[i] for i, n in enumerate(names) if n != "vocals"], axis=0)
        return {"vocals": vocals, "accompaniment": rest.astype(np.float32)}
