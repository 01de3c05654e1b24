"""The training recipe (``--config train.yaml``); every field has the paper-like default."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field


class SpecAugmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    time_masks: int = Field(2, ge=0)
    time_width: float = Field(0.2, ge=0, le=1)
    freq_masks: int = Field(2, ge=0)
    freq_width: float = Field(0.1, ge=0, le=1)


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field("offline", description="model family: offline | paper")
    family_options: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=2)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(20, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    spec_augment: SpecAugmentConfig | None = Field(default_factory=SpecAugmentConfig)
    statuses: list[str] = Field(
        default_factory=lambda: ["ok"], description="run records to train on (add filtered, …)"
    )
    device: str = Field("auto", description="auto | cpu | cuda")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 on CUDA, fp32 on CPU"
    )
    checkpoint_every_steps: int = Field(0, ge=0, description="0: at the end of each epoch")
    feature_cache: Path | None = Field(None, description="default: <cache>/clap_features")
    eval_batch_size: int = Field(64, ge=1)

    def recipe_hash(self) -> str:
        """What a resumed training must share with the one it resumes (not device/precision)."""
        fields = self.model_dump(mode="json", exclude={"device", "precision", "feature_cache"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def load_train_config(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config is a mapping")
    data.update(overrides or {})
    return TrainConfig.model_validate(data)
