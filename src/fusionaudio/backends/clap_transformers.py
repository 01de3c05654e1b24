"""CLAP through transformers' ClapModel: LAION-CLAP checkpoints or the ones this project
trains, from a local folder or a hub id (``local_files_only`` by default)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version
from fusionaudio.backends.model_identity import content_identity
from fusionaudio.backends.transformers_loading import load_pretrained


class TransformersClap:
    name = "clap_transformers"

    def __init__(self, model: str, device: str = "cpu", local_files_only: bool = True) -> None:
        self.model = model
        self.device = device
        self.local_files_only = local_files_only
        self.model_id = model
        self.revision = "not-loaded"
        self._processor: Any = None
        self._model: Any = None

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"transformers=={package_version('transformers')}",
            "model": self.model,
            "weights": content_identity(self.model),
        }

    def setup(self) -> None:
        from transformers import ClapModel, ClapProcessor

        self._processor, self._model, self.revision = load_pretrained(
            ClapModel, ClapProcessor, self.model, self.device, None, self.local_files_only
        )

    @property
    def sample_rate(self) -> int:
        return int(self._processor.feature_extractor.sampling_rate) if self._processor else 48_000

    def score(self, signal: np.ndarray, texts: list[str]) -> list[float]:
        """Cosine similarity of the clip (at ``sample_rate``) with each text."""
        audio, text = self._embed([signal], texts)
        return [float(v) for v in (text @ audio[0]).cpu()]

    def score_pairs(self, signals: Sequence[np.ndarray], texts: Sequence[str]) -> list[float]:
        """Each clip's similarity with its own text: the batch's audio through the audio
        tower in one call, its texts through the text tower in another."""
        if not signals:
            return []
        audio, text = self._embed(signals, texts)
        return [float(v) for v in (audio * text).sum(dim=-1).cpu()]

    def _embed(self, signals: Sequence[np.ndarray], texts: Sequence[str]) -> tuple[Any, Any]:
        """Unit-length audio and text embeddings."""
        import torch

        if self._model is None:
            raise RuntimeError("TransformersClap.setup() was not called")
        # one clip per call: in "fusion" mode the extractor marks a random clip of a batch
        # as long when none is, which would make a clip's score depend on its neighbours
        per_clip = [
            self._processor.feature_extractor(
                [np.asarray(signal, dtype=np.float32)],
                sampling_rate=self.sample_rate,
                return_tensors="pt",
            )
            for signal in signals
        ]
        audio_inputs = {key: torch.cat([f[key] for f in per_clip]) for key in per_clip[0]}
        # A caption longer than the text tower's positions is cut, not a crash (RoBERTa's
        # positions start after the padding index, hence the 2).
        positions = int(self._model.config.text_config.max_position_embeddings)
        text_inputs = self._processor.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=positions - 2,
            return_tensors="pt",
        )
        with torch.inference_mode():
            audio = self._model.get_audio_features(
                **{k: v.to(self.device) for k, v in audio_inputs.items()}
            )
            text = self._model.get_text_features(
                **{k: v.to(self.device) for k, v in text_inputs.items()}
            )
        audio = getattr(audio, "pooler_output", audio)
        text = getattr(text, "pooler_output", text)
        return (
            torch.nn.functional.normalize(audio, dim=-1),
            torch.nn.functional.normalize(text, dim=-1),
        )
