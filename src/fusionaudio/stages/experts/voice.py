"""The voice: what it sounds like (pitch, likely speaker, speaking rate, singing, turns).

Runs on the vocal track (the separated stem when separation is on) over the segments the
VAD cue found; without speech the cue says only ``{"present": false}``, unless the
tagging cue (when that expert is on) scores a Singing class at 0.3 or more: Silero VAD
ignores singing, so the whole clip is then analysed as a sung voice. The Singing classes
also join the DSP's held-note evidence for the singing decision. Every decision carries the numbers it used in ``evidence``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.audioset_ontology import music_classes
from fusionaudio.backends.voice_dsp import MIN_SPEAKER_CONFIDENCE, VoiceDsp
from fusionaudio.schema import Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, VOCALS_16K, Resources, Stage, StageInput
from fusionaudio.stages.settings import BuildContext, RoleConfig, known_name

SINGING_THRESHOLD = 0.5
TAG_SINGING_FULL = 0.3  # a YAMNet Singing-class score at which the tag evidence is full


@runtime_checkable
class VoiceBackend(Protocol):
    name: str
    model_id: str
    revision: str

    def warm_up(self) -> None: ...

    def fingerprint(self) -> dict[str, Any]: ...

    def analyse(
        self, signal: np.ndarray, sr: int, segments: Sequence[tuple[float, float]]
    ) -> dict[str, Any]: ...


def _dsp(settings: VoiceConfig) -> VoiceBackend:
    return VoiceDsp(settings.max_speech_s)


# backend name (``experts.voice.backend``) -> the backend, not yet warmed up
VOICE_BACKENDS: dict[str, Callable[[VoiceConfig], VoiceBackend]] = {"dsp": _dsp}


class VoiceConfig(RoleConfig):
    """What the voice sounds like: pitch, likely speaker, rate, singing, turns (DSP)."""

    backend: str = "dsp"
    max_speech_s: float = Field(30.0, gt=0, description="speech analysed per clip, at most")
    min_speech_s: float = Field(0.3, ge=0, description="less VAD speech: present false")
    workers: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("voice backend", name, VOICE_BACKENDS)

    def build(self, context: BuildContext) -> VoiceStage:
        return VoiceStage(self, context)


def singing_confidence(
    held_note_share: float, voiced_share: float, tag_singing: float | None
) -> float:
    """Held notes and a high voiced share from DSP; the tagger's Singing classes if present.

    Without the tagger the DSP score is scaled by 0.8: held notes alone also come from
    drawn-out vowels, so the cue hedges.
    """
    held = min(1.0, max(0.0, (held_note_share - 0.1) / 0.4))
    voiced = min(1.0, max(0.0, (voiced_share - 0.5) / 0.4))
    dsp = 0.6 * held + 0.4 * voiced
    if tag_singing is None:
        return round(0.8 * dsp, 3)
    return round(0.5 * dsp + 0.5 * min(1.0, tag_singing / TAG_SINGING_FULL), 3)


class VoiceStage(Stage):
    name = "voice"
    produces = "voice"

    def __init__(self, settings: VoiceConfig, context: BuildContext | None = None) -> None:
        context = context or BuildContext()
        self.settings = settings
        # the vocal stem when separation runs
        self.audio_view = VOCALS_16K if context.separated else AUDIO_16K_MONO
        self.needs = ("vad", self.audio_view)
        # The tagging cue is used when that expert is on; it is no need, so a run
        # without the tagger still has a voice cue (singing then rests on DSP alone).
        self.wants = ("tagging",) if context.tagging else ()
        self.backend_name = settings.backend
        self.max_speech_s = settings.max_speech_s
        self.min_speech_s = settings.min_speech_s
        self.workers = settings.workers
        self.resources = Resources(cpus=1)
        self._backend: VoiceBackend | None = None
        self._singing: frozenset[str] = frozenset()

    def _make(self) -> VoiceBackend:
        return VOICE_BACKENDS[self.backend_name](self.settings)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "backend": self.backend_name,
            "dsp": self._make().fingerprint(),
            "audio_view": self.audio_view,
            "uses_tagging": bool(self.wants),
            "max_speech_s": self.max_speech_s,
            "min_speech_s": self.min_speech_s,
            "singing": [SINGING_THRESHOLD, TAG_SINGING_FULL],
        }

    def setup(self) -> None:
        self._singing = music_classes().singing
        self._backend = self._make()
        self._backend.warm_up()

    def _tag_singing(self, item: StageInput) -> tuple[float | None, str | None]:
        tagging = item.cues.get("tagging")
        if tagging is None:
            return None, None
        posteriors: dict[str, float] = tagging.output.get("posteriors", {})
        found = [(float(p), label) for label, p in posteriors.items() if label in self._singing]
        if not found:
            return 0.0, None
        score, label = max(found)
        return score, label

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        backend = self._backend
        if backend is None:
            raise RuntimeError("VoiceStage.setup() was not called")
        cues = []
        for item in batch:
            started = time.perf_counter()
            vad = item.cues["vad"].output
            speech_s = float(vad.get("speech_s", 0.0))
            tag_score, tag_label = self._tag_singing(item)
            audio = item.audio(self.audio_view)
            if vad.get("has_speech") and speech_s >= self.min_speech_s:
                segments = [(float(a), float(b)) for a, b in vad["segments"]]
                source = "vad segments"
            elif tag_score is not None and tag_score >= TAG_SINGING_FULL:
                # Silero VAD is trained to ignore singing; the tagger hears it: analyse
                # the whole clip as a sung voice.
                segments = [(0.0, audio.samples.shape[1] / audio.sample_rate)]
                source = "whole clip (no VAD speech; the tagger hears singing)"
            else:
                cues.append(self.cue(backend, {"present": False}, time.perf_counter() - started))
                continue
            found = backend.analyse(audio.samples[0], audio.sample_rate, segments)
            evidence = found.pop("evidence")
            confidence = singing_confidence(
                evidence["held_note_share"], evidence["voiced_share"], tag_score
            )
            evidence.update(
                segments_from=source,
                audio_view=self.audio_view,
                tag_singing=None if tag_score is None else round(tag_score, 4),
                tag_singing_label=tag_label,
            )
            if confidence >= SINGING_THRESHOLD:
                # Singers raise and hold their pitch: the spoken-voice F0 ranges fit less;
                # and a sung voice has no speaking rate.
                found["speaker_confidence"] = round(0.8 * found["speaker_confidence"], 2)
                if found["speaker_confidence"] < MIN_SPEAKER_CONFIDENCE:
                    found["speaker"] = None
                found["speaking_rate_syllables_per_s"] = None
                found["rate"] = None
            output = {
                "present": True,
                "speech_s": round(speech_s, 3),
                **found,
                "singing": confidence >= SINGING_THRESHOLD,
                "singing_confidence": confidence,
                "evidence": evidence,
            }
            cues.append(self.cue(backend, output, time.perf_counter() - started))
        return cues
