"""Score, then decide: this stage only scores each caption against its own audio.

The filter decision (``status: filtered`` below the scorer's threshold) is taken when the
record is written, from the config, so changing a threshold runs no model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.clap_transformers import TransformersClap
from fusionaudio.backends.pseudo_clap import PseudoClap
from fusionaudio.clap.scorer import CheckpointScorer
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, AUDIO_48K_MONO, Resources, Stage, StageInput
from fusionaudio.stages.settings import Strict, known_name

RATE_VIEWS = {16_000: AUDIO_16K_MONO, 48_000: AUDIO_48K_MONO}


class AudioTextScorer(Protocol):
    """A CLAP model: captions against the clip's 48 kHz mono audio."""

    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def score(self, signal: np.ndarray, texts: list[str]) -> list[float]: ...

    def score_pairs(self, signals: Sequence[np.ndarray], texts: Sequence[str]) -> list[float]: ...


# Scorers that need another input than the 48 kHz audio have their own path in the stage:
# the pseudo-CLAP proxy scores the tagger's posteriors, a train-clap checkpoint a batch
# at its family's sample rate.
Scorer = PseudoClap | CheckpointScorer | AudioTextScorer


def _pseudo_clap(settings: QualityConfig) -> Scorer:
    return PseudoClap()


def _clap_transformers(settings: QualityConfig) -> Scorer:
    if settings.model is None:
        raise ValueError("the clap_transformers scorer needs model (a folder or hub id)")
    return TransformersClap(settings.model, device=settings.device)


def _clap_checkpoint(settings: QualityConfig) -> Scorer:
    if settings.model is None:
        raise ValueError("the clap_checkpoint scorer needs model (a train-clap folder)")
    return CheckpointScorer(Path(settings.model), settings.device)


# scorer name (``quality.scorer``) -> the scorer, not yet loaded
SCORERS: dict[str, Callable[[QualityConfig], Scorer]] = {
    "pseudo_clap": _pseudo_clap,
    "clap_transformers": _clap_transformers,
    "clap_checkpoint": _clap_checkpoint,
}

# Cosine thresholds per scorer; a trained checkpoint's should be calibrated (calibrate).
DEFAULT_THRESHOLDS = {"clap_transformers": 0.08, "pseudo_clap": 0.2, "clap_checkpoint": 0.1}


class QualityConfig(Strict):
    """CLAP-style scoring of each caption against its audio, and claim checks."""

    enabled: bool = True
    scorer: str = "pseudo_clap"
    model: str | None = Field(
        None,
        description="clap_transformers: a CLAP folder or hub id; clap_checkpoint: a train-clap folder",
    )
    device: str = "cpu"
    thresholds: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_THRESHOLDS),
        description="per scorer: captions scoring below are filtered (the paper: 0.08 for LAION-CLAP)",
    )
    claims: Literal["warn", "filter"] = "filter"
    workers: int = Field(1, ge=1)

    @field_validator("scorer")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("scorer", name, SCORERS)

    @field_validator("thresholds")
    @classmethod
    def _keep_other_defaults(cls, value: dict[str, float]) -> dict[str, float]:
        """Setting one scorer's threshold keeps the defaults of the others."""
        return {**DEFAULT_THRESHOLDS, **value}

    def threshold(self) -> float:
        if self.scorer not in self.thresholds:
            raise ValueError(f"quality.thresholds has no entry for the scorer {self.scorer!r}")
        return self.thresholds[self.scorer]


class ClapScoreStage(Stage):
    name = "clap"
    produces = "clap"
    batch_size = 8

    def __init__(self, settings: QualityConfig) -> None:
        self.scorer = settings.scorer
        # Built now, not in setup(): a checkpoint's family decides the view this stage
        # needs. No scorer loads its model before setup().
        self._backend = SCORERS[settings.scorer](settings)
        self._trained: CheckpointScorer | None = None
        if isinstance(self._backend, CheckpointScorer):
            self._trained = self._backend
            self.needs = ("fusion", RATE_VIEWS[self._trained.sample_rate])
        elif isinstance(self._backend, PseudoClap):
            self.needs = ("fusion", "tagging")
        else:
            self.needs = ("fusion", AUDIO_48K_MONO)
        self.workers = settings.workers
        self.resources = Resources(cpus=1, gpus=1.0 if settings.device.startswith("cuda") else 0.0)
        self._pseudo: PseudoClap | None = None
        self._clap: AudioTextScorer | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "model": self._backend.fingerprint()}

    def setup(self) -> None:
        backend = self._backend
        backend.setup()
        if isinstance(backend, PseudoClap):
            self._pseudo = backend
        elif not isinstance(backend, CheckpointScorer):
            self._clap = backend

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        if self._trained is not None:
            return self._score_batch(batch, self._trained, self.needs[1], self._trained.score)
        if self._clap is not None:
            return self._score_batch(batch, self._clap, AUDIO_48K_MONO, self._clap.score_pairs)
        cues = []
        for item in batch:
            started = time.perf_counter()
            fusion = item.cues["fusion"].output
            backend: Any = self._pseudo or self._clap
            if fusion.get("uncertain") or not fusion.get("caption"):
                output: dict[str, Any] = {
                    "score": None,
                    "scorer": self.scorer,
                    "reason": "no caption to score",
                }
            elif self._pseudo is not None:
                (score,) = self._pseudo.score(
                    item.cues["tagging"].output["posteriors"], [fusion["caption"]]
                )
                output = {
                    "score": None if score is None else round(score, 4),
                    "scorer": self.scorer,
                }
                if score is None:
                    output["reason"] = "no sound class above the posterior floor"
            else:
                raise RuntimeError("ClapScoreStage.setup() was not called")
            cues.append(self.cue(backend, output, time.perf_counter() - started))
        return cues

    def _score_batch(
        self,
        batch: Sequence[StageInput],
        backend: Any,
        view: str,
        score_pairs: Callable[[list[np.ndarray], list[str]], list[float]],
    ) -> list[Cue]:
        """The whole batch's captions in one model call; clips without one get no score."""
        started = time.perf_counter()
        outputs: list[dict[str, Any]] = []
        scored = []
        for index, item in enumerate(batch):
            fusion = item.cues["fusion"].output
            if fusion.get("uncertain") or not fusion.get("caption"):
                outputs.append(
                    {"score": None, "scorer": self.scorer, "reason": "no caption to score"}
                )
            else:
                outputs.append({"scorer": self.scorer})
                scored.append((index, item.audio(view).samples[0], str(fusion["caption"])))
        if scored:
            scores = score_pairs([s for _, s, _ in scored], [c for _, _, c in scored])
            for (index, _, _), score in zip(scored, scores, strict=True):
                outputs[index]["score"] = round(score, 4)
        elapsed = (time.perf_counter() - started) / max(1, len(batch))
        return [self.cue(backend, output, elapsed) for output in outputs]
