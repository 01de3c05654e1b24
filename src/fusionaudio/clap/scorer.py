"""A trained checkpoint as the quality stage's scorer: cosine of each clip with its caption,
a whole batch per call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fusionaudio.clap.checkpoint import (
    content_fingerprint,
    family_of,
    load_checkpoint,
)
from fusionaudio.clap.families import FAMILIES
from fusionaudio.clap.model import DualEncoder


class CheckpointScorer:
    name = "clap_checkpoint"

    def __init__(self, folder: Path, device: str = "cpu") -> None:
        self.folder = folder
        self.device = device
        self.family = family_of(folder)
        self.sample_rate = FAMILIES[self.family].sample_rate
        self.model_id = f"{folder} ({self.family} family)"
        self.revision = "content:" + content_fingerprint(folder)
        self._model: DualEncoder | None = None

    def fingerprint(self) -> dict[str, str]:
        """By content: retraining into the same folder rescores."""
        return {"family": self.family, "content": self.revision}

    def setup(self) -> None:
        self._model = load_checkpoint(self.folder, self.device)

    def score(self, signals: list[np.ndarray], captions: list[str]) -> list[float]:
        """Mono signals at ``sample_rate``, one caption each."""
        if self._model is None:
            raise RuntimeError("CheckpointScorer.setup() was not called")
        model = self._model
        with torch.no_grad():
            audio = model.embed_audio(
                model.collate_audio([model.audio_features(s) for s in signals])
            )
            text = model.embed_text(model.text_inputs(captions))
        return [float(v) for v in (audio * text).sum(dim=1).float().cpu()]
