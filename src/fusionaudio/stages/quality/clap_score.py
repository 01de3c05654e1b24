"""Score, then decide: this stage only scores each caption against its own audio.

The filter decision (``status: filtered`` below the scorer's threshold) is taken when the
record is written, from the config, so changing a threshold runs no model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from fusionaudio.backends.clap_transformers import TransformersClap
from fusionaudio.backends.pseudo_clap import PseudoClap
from fusionaudio.clap.scorer import CheckpointScorer
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, AUDIO_48K_MONO, Resources, Stage, StageInput

ScorerName = Literal["pseudo_clap", "clap_transformers", "clap_checkpoint"]
RATE_VIEWS = {16_000: AUDIO_16K_MONO, 48_000: AUDIO_48K_MONO}


class ClapScoreStage(Stage):
    name = "clap"
    produces = "clap"

    def __init__(
        self,
        scorer: ScorerName = "pseudo_clap",
        model: str | None = None,
        device: str = "cpu",
        batch_size: int = 8,
        workers: int = 1,
        threads: int = 1,
    ) -> None:
        self.scorer = scorer
        self.model = model
        self.device = device
        self._trained: CheckpointScorer | None = None
        if scorer == "pseudo_clap":
            self.needs = ("fusion", "tagging")
        elif scorer == "clap_transformers":
            if model is None:
                raise ValueError("the clap_transformers scorer needs model (a folder or hub id)")
            self.needs = ("fusion", AUDIO_48K_MONO)
        elif scorer == "clap_checkpoint":
            if model is None:
                raise ValueError("the clap_checkpoint scorer needs model (a train-clap folder)")
            self._trained = CheckpointScorer(Path(model), device)
            self.needs = ("fusion", RATE_VIEWS[self._trained.sample_rate])
        else:
            raise ValueError(
                f"unknown scorer {scorer!r}; known: pseudo_clap, clap_transformers, clap_checkpoint"
            )
        self.batch_size = batch_size
        self.workers = workers
        self.threads = threads
        self.resources = Resources(cpus=threads, gpus=1.0 if device.startswith("cuda") else 0.0)
        self._pseudo: PseudoClap | None = None
        self._clap: TransformersClap | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self.scorer == "pseudo_clap":
            return {"scorer": self.scorer, "model": PseudoClap(threads=self.threads).fingerprint()}
        if self._trained is not None:
            return {"scorer": self.scorer, "model": self._trained.fingerprint()}
        return {"scorer": self.scorer, "model": TransformersClap(str(self.model)).fingerprint()}

    def setup(self) -> None:
        if self.scorer == "pseudo_clap":
            self._pseudo = PseudoClap(threads=self.threads)
            self._pseudo.setup()
        elif self._trained is not None:
            self._trained.setup()
        else:
            assert self.model is not None
            self._clap = TransformersClap(self.model, device=self.device)
            self._clap.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        if self._trained is not None:
            return self._score_trained(batch, self._trained)
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
            elif self._clap is not None:
                (score,) = self._clap.score(
                    item.audio(AUDIO_48K_MONO).samples[0], [fusion["caption"]]
                )
                output = {"score": round(score, 4), "scorer": self.scorer}
            else:
                raise RuntimeError("ClapScoreStage.setup() was not called")
            cues.append(self.cue(backend, output, time.perf_counter() - started))
        return cues

    def _score_trained(self, batch: Sequence[StageInput], scorer: CheckpointScorer) -> list[Cue]:
        """The whole batch's captions in one model call; clips without one get no score."""
        started = time.perf_counter()
        view = self.needs[1]
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
            scores = scorer.score([s for _, s, _ in scored], [c for _, _, c in scored])
            for (index, _, _), score in zip(scored, scores, strict=True):
                outputs[index]["score"] = round(score, 4)
        elapsed = (time.perf_counter() - started) / max(1, len(batch))
        return [self.cue(scorer, output, elapsed) for output in outputs]
