"""Music: a gate first, then a description only where the gate opens.

The paper runs its music captioner only when YAMNet hears music, because music
captioners describe music that is not there. Offline, the description is genre,
instrument and mood candidates from YAMNet's music sub-classes plus tempo and key from
DSP; with an audio LLM backend, the music prompt is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fusionaudio.backends.audioset_ontology import MusicClasses, music_classes
from fusionaudio.backends.music_dsp import LibrosaMusicDsp
from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, Resources, Stage, StageInput
from fusionaudio.stages.experts.llm_backends import AUDIO_LLM_BACKENDS, AudioLLM, make_audio_llm
from fusionaudio.stages.experts.prompts import load_prompt


class GateOnly:
    name = "yamnet_gate"
    model_id = "YAMNet music classes (from the tagging cue)"
    revision = "v1"


def _candidates(
    posteriors: dict[str, float], group: frozenset[str], minimum: float, top: int
) -> list[dict[str, Any]]:
    found = sorted(
        ((p, label) for label, p in posteriors.items() if label in group and p >= minimum),
        reverse=True,
    )
    return [{"label": label, "confidence": round(p, 3)} for p, label in found[:top]]


class MusicStage(Stage):
    name = "music"
    produces = "music"

    def __init__(
        self,
        audio_view: str = AUDIO_16K_MONO,
        backend: str = "derived",
        model: str | None = None,
        server: ServerSettings | None = None,
        device: str = "cpu",
        gate_threshold: float = 0.3,
        candidate_min_confidence: float = 0.015,
        prompt_version: int = 1,
        batch_size: int = 2,
        workers: int = 1,
    ) -> None:
        if backend != "derived" and backend not in AUDIO_LLM_BACKENDS:
            raise ValueError(f"unknown music backend {backend!r}")
        self.audio_view = audio_view
        self.needs = ("tagging", audio_view)
        self.backend_name = backend
        self.model = model
        self.server = server
        self.device = device
        self.gate_threshold = gate_threshold
        self.candidate_min_confidence = candidate_min_confidence
        self.prompt_version = prompt_version
        self.batch_size = batch_size
        self.workers = workers
        self.resources = Resources(cpus=1, gpus=1.0 if device.startswith("cuda") else 0.0)
        self._classes: MusicClasses | None = None
        self._dsp: LibrosaMusicDsp | None = None
        self._llm: AudioLLM | None = None

    def fingerprint(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "backend": self.backend_name,
            "audio_view": self.audio_view,
            "gate_threshold": self.gate_threshold,
        }
        if self.backend_name == "derived":
            return {
                **base,
                "candidate_min_confidence": self.candidate_min_confidence,
                "dsp": LibrosaMusicDsp().revision,
            }
        return {
            **base,
            "model": self.model if self.server is None else self.server.model,
            "prompt": load_prompt("music_description", self.prompt_version).version,
        }

    def setup(self) -> None:
        self._classes = music_classes()
        if self.backend_name == "derived":
            self._dsp = LibrosaMusicDsp()
            self._dsp.warm_up()
        else:
            self._llm = make_audio_llm(self.backend_name, self.model, self.server, self.device)
            self._llm.setup()

    def gate(self, posteriors: dict[str, float]) -> dict[str, Any]:
        assert self._classes is not None
        score = max((posteriors.get(label, 0.0) for label in self._classes.music), default=0.0)
        return {
            "open": score >= self.gate_threshold,
            "music_score": round(score, 4),
            "threshold": self.gate_threshold,
        }

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        if self._classes is None:
            raise RuntimeError("MusicStage.setup() was not called")
        cues = []
        for item in batch:
            started = time.perf_counter()
            posteriors = item.cues["tagging"].output["posteriors"]
            gate = self.gate(posteriors)
            output: dict[str, Any] = {"gate": gate}
            backend: Any = GateOnly()
            prompt_version = None
            if gate["open"]:
                audio = item.audio(self.audio_view)
                if self._dsp is not None:
                    backend = self._dsp
                    classes, minimum = self._classes, self.candidate_min_confidence
                    output.update(
                        generated=False,
                        genres=_candidates(posteriors, classes.genres, minimum, 3),
                        instruments=_candidates(posteriors, classes.instruments, minimum, 5),
                        moods=_candidates(posteriors, classes.moods, minimum, 2),
                        vocals=_candidates(posteriors, classes.singing, minimum, 2),
                        **self._dsp.tempo(audio.samples[0], audio.sample_rate),
                        **self._dsp.key(audio.samples[0], audio.sample_rate),
                    )
                else:
                    assert self._llm is not None
                    backend = self._llm
                    prompt = load_prompt("music_description", self.prompt_version)
                    prompt_version = prompt.version
                    output.update(
                        generated=True, text=self._llm.describe(audio.samples[0], prompt.text)
                    )
            cue = self.cue(backend, output, time.perf_counter() - started)
            cues.append(cue if prompt_version is None else cue.with_prompt_version(prompt_version))
        return cues
