"""The paper's family: transformers' ``ClapModel`` (HTSAT audio tower, BERT/RoBERTa text
tower, shared projection space), from a local checkpoint or randomly initialised from a
local checkpoint's configuration and tokenizer. Nothing is fetched from a hub.

A checkpoint this family writes is also a plain transformers CLAP folder: the
``clap_transformers`` scorer and ``ClapModel.from_pretrained`` read it as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from fusionaudio.backends.model_files import package_version
from fusionaudio.clap.model import (
    INITIAL_TEMPERATURE,
    MARKER,
    AudioFeatures,
    Batch,
    DualEncoder,
    SpecAugment,
)

MAX_TEXT_TOKENS = 77


class PaperClap(DualEncoder):
    family = "paper"
    deterministic_features = False  # long clips are cropped at random (rand_trunc / fusion)
    sample_rate = 48_000
    defaults: ClassVar[dict[str, Any]] = {"model": None, "init": "pretrained"}

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        from transformers import ClapConfig, ClapModel, ClapProcessor

        unknown = set(options) - set(self.defaults)
        if unknown:
            raise ValueError(f"unknown paper family options: {sorted(unknown)}")
        self.options = {**self.defaults, **options}
        source = self.options["model"]
        if not source:
            raise ValueError(
                "paper family: set family_options.model to a local CLAP folder (its config and "
                "tokenizer; its weights too unless init: random)"
            )
        if self.options["init"] not in ("pretrained", "random"):
            raise ValueError("paper family: init must be 'pretrained' or 'random'")
        self.processor = ClapProcessor.from_pretrained(source, local_files_only=True)
        if self.options["init"] == "pretrained":
            self.model = ClapModel.from_pretrained(source, local_files_only=True)
        else:
            config = ClapConfig.from_pretrained(source, local_files_only=True)
            config.logit_scale_init_value = 1.0 / INITIAL_TEMPERATURE
            self.model = ClapModel(config)
        # One temperature for both directions: the audio one, shared under the base name.
        self.logit_scale = self.model.logit_scale_a

    @classmethod
    def build(cls, options: dict[str, Any]) -> PaperClap:
        return cls(options)

    @classmethod
    def from_pretrained(cls, folder: Path, device: str = "cpu") -> PaperClap:
        """A folder this family wrote, or any transformers CLAP folder (LAION-CLAP)."""
        model = cls({"model": str(folder), "init": "pretrained"})
        return model.to(device).eval()

    def save_pretrained(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        marker = {
            "family": self.family,
            "options": {"model": ".", "init": "pretrained"},
            "trained_from": self.options,
            "sample_rate": self.sample_rate,
            "transformers": package_version("transformers"),
        }
        (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")

    def feature_fingerprint(self) -> str:
        return "clap-feature-extractor:" + json.dumps(
            self.processor.feature_extractor.to_dict(), sort_keys=True, default=str
        )

    def audio_features(self, signal: np.ndarray) -> AudioFeatures:
        out = self.processor.feature_extractor(
            [np.asarray(signal, dtype=np.float32)],
            sampling_rate=self.sample_rate,
            return_tensors="np",
        )
        features = {"input_features": np.asarray(out["input_features"][0], dtype=np.float32)}
        if "is_longer" in out:
            features["is_longer"] = np.asarray(out["is_longer"][0], dtype=bool)
        return features

    def collate_audio(
        self,
        items: list[AudioFeatures],
        augment: SpecAugment | None = None,
        generator: torch.Generator | None = None,
    ) -> Batch:
        features = torch.from_numpy(np.stack([item["input_features"] for item in items]))
        if augment is not None:  # (B, channels, time, mel)
            features = augment(features, time_axis=2, freq_axis=3,
                               generator=generator or torch.Generator().manual_seed(0))  # fmt: skip
        batch = {"input_features": features}
        if all("is_longer" in item for item in items):
            batch["is_longer"] = torch.from_numpy(
                np.stack([item["is_longer"] for item in items]).reshape(len(items), 1)
            )
        return batch

    def text_inputs(self, texts: list[str], memo: dict[str, torch.Tensor] | None = None) -> Batch:
        limit = min(MAX_TEXT_TOKENS, int(self.processor.tokenizer.model_max_length))
        tokens = self.processor.tokenizer(
            texts, padding=True, truncation=True, max_length=limit, return_tensors="pt"
        )
        return dict(tokens)

    def embed_audio(self, audio: Batch) -> torch.Tensor:
        device = self.logit_scale.device
        out = self.model.get_audio_features(**{k: v.to(device) for k, v in audio.items()})
        return torch.nn.functional.normalize(getattr(out, "pooler_output", out), dim=-1)

    def embed_text(self, text: Batch) -> torch.Tensor:
        device = self.logit_scale.device
        out = self.model.get_text_features(**{k: v.to(device) for k, v in text.items()})
        return torch.nn.functional.normalize(getattr(out, "pooler_output", out), dim=-1)

    def describe(self) -> dict[str, Any]:
        config = self.model.config
        return {
            "family": self.family,
            "audio": f"HTSAT ({config.audio_config.hidden_size}-d, depths "
            f"{list(config.audio_config.depths)})",
            "text": f"{config.text_config.model_type} ({config.text_config.num_hidden_layers} "
            f"layers, {config.text_config.hidden_size}-d)",
            "projection_dim": config.projection_dim,
            "parameters": sum(p.numel() for p in self.parameters()),
            "options": self.options,
        }
