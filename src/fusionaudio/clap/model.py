"""What every audio-text dual encoder offers training, evaluation and the scorer.

A family splits its audio path in two: ``audio_features`` (per clip, outside autograd,
possibly a frozen network; cacheable when deterministic) and ``forward`` (batched,
trainable). Training, evaluation and scoring only ever talk to this interface, so a new
family is one file and one registry line (``families/__init__.py``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

AudioFeatures = dict[str, np.ndarray]
Batch = dict[str, torch.Tensor]
MARKER = "fusionaudio.json"  # in every checkpoint folder: the family and its options
INITIAL_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = math.log(100.0)


@dataclass(frozen=True)
class SpecAugment:
    """Time and feature masking (Park et al., 2019) on a batch of features.

    Widths are fractions of the axis: a mask covers up to ``time_width`` of the frames.
    """

    time_masks: int = 2
    time_width: float = 0.2
    freq_masks: int = 2
    freq_width: float = 0.1

    def __call__(
        self, x: torch.Tensor, time_axis: int, freq_axis: int, generator: torch.Generator
    ) -> torch.Tensor:
        keep_t = self._band_keep(x.shape[0], x.shape[time_axis], self.time_masks,
                                 self.time_width, generator)  # fmt: skip
        keep_f = self._band_keep(x.shape[0], x.shape[freq_axis], self.freq_masks,
                                 self.freq_width, generator)  # fmt: skip
        shape_t = [1] * x.ndim
        shape_t[0], shape_t[time_axis] = x.shape[0], x.shape[time_axis]
        shape_f = [1] * x.ndim
        shape_f[0], shape_f[freq_axis] = x.shape[0], x.shape[freq_axis]
        mask = keep_t.view(shape_t).to(x.dtype) * keep_f.view(shape_f).to(x.dtype)
        return x * mask.to(x.device)

    @staticmethod
    def _band_keep(
        batch: int, length: int, count: int, width: float, generator: torch.Generator
    ) -> torch.Tensor:
        keep = torch.ones(batch, length, dtype=torch.bool)
        widest = int(length * width)
        if widest < 1 or count < 1:
            return keep
        positions = torch.arange(length)[None, :]
        for _ in range(count):
            widths = torch.randint(0, widest + 1, (batch,), generator=generator)
            starts = (torch.rand(batch, generator=generator) * (length - widths + 1)).long()
            inside = (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
            keep &= ~inside
        return keep


class DualEncoder(torch.nn.Module, ABC):
    family: ClassVar[str]
    #: features are a pure function of the audio, so they may be cached per clip
    deterministic_features: ClassVar[bool]
    sample_rate: int

    logit_scale: torch.nn.Parameter

    @classmethod
    @abstractmethod
    def build(cls, options: dict[str, Any]) -> DualEncoder:
        """A fresh model from the training config's ``family_options``."""

    @classmethod
    @abstractmethod
    def from_pretrained(cls, folder: Path, device: str = "cpu") -> DualEncoder:
        """Read back what ``save_pretrained`` wrote."""

    @abstractmethod
    def save_pretrained(self, folder: Path) -> None:
        """config + safetensors + the text tokenizer + ``fusionaudio.json``."""

    @abstractmethod
    def feature_fingerprint(self) -> str:
        """Identifies ``audio_features``' output (the cache key of cached features)."""

    @abstractmethod
    def audio_features(self, signal: np.ndarray) -> AudioFeatures:
        """Mono float32 audio at ``sample_rate`` -> this clip's model input."""

    @abstractmethod
    def collate_audio(
        self,
        items: list[AudioFeatures],
        augment: SpecAugment | None = None,
        generator: torch.Generator | None = None,
    ) -> Batch:
        """Pad and stack clips' features (SpecAugment when training)."""

    @abstractmethod
    def text_inputs(self, texts: list[str], memo: dict[str, torch.Tensor] | None = None) -> Batch:
        """Tokenised texts (or a frozen tower's outputs; ``memo`` may keep those)."""

    @abstractmethod
    def embed_audio(self, audio: Batch) -> torch.Tensor:
        """L2-normalised audio embeddings (B, D)."""

    @abstractmethod
    def embed_text(self, text: Batch) -> torch.Tensor:
        """L2-normalised text embeddings (T, D)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the model card says about the architecture."""

    def forward(self, audio: Batch, text: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One call for both towers, so that a DDP wrapper sees the whole forward pass."""
        return self.embed_audio(audio), self.embed_text(text), self.logit_scale.exp()

    def clamp_logit_scale(self) -> None:
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)


def initial_logit_scale() -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(math.log(1.0 / INITIAL_TEMPERATURE)))
