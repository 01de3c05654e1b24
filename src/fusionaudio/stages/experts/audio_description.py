"""General sound description (the paper's "audio caption", from GAMA).

Offline, no audio captioner ships in any package, so the ``derived`` backend builds a
structured description from the AudioSet event timeline and acoustic descriptors, and
says so: ``generated: false``. Its ``recording`` key describes the recording itself
(bandwidth, noise, clipping, reverberation, stereo width, level dynamics) from the
full-band 44.1 kHz stereo view (``backends/recording_dsp.py``). With an audio LLM
backend, the paper's prompt is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, field_validator

from fusionaudio.backends.acoustic_descriptors import describe_signal, words_for
from fusionaudio.backends.openai_http import ServerSlots
from fusionaudio.backends.recording_dsp import describe_recording
from fusionaudio.schema import Cue
from fusionaudio.stages.base import (
    AUDIO_16K_MONO,
    AUDIO_44K_STEREO,
    Resources,
    Stage,
    StageInput,
)
from fusionaudio.stages.experts.llm_backends import AudioLLM, openai_audio, qwen2_audio
from fusionaudio.stages.experts.prompts import load_prompt
from fusionaudio.stages.settings import (
    BatchSize,
    BuildContext,
    RoleConfig,
    ServerConfig,
    batch_size_for,
    known_name,
)


class DerivedDescriber:
    name = "derived"
    model_id = "derived: YAMNet timeline + acoustic descriptors + recording DSP"
    revision = "v2"


DERIVED = "derived"
# backend name (``experts.audio_description.backend``) -> the audio LLM, not yet loaded;
# None: no model, the stage derives the description from the tagging timeline and DSP
AUDIO_DESCRIPTION_BACKENDS: dict[
    str, Callable[[AudioDescriptionConfig, ServerSlots | None], AudioLLM] | None
] = {
    DERIVED: None,
    "openai_audio": openai_audio,
    "qwen2_audio": qwen2_audio,
}


class AudioDescriptionConfig(RoleConfig):
    backend: str = DERIVED
    model: str | None = None
    server: ServerConfig | None = None
    device: str = "cpu"
    min_event_confidence: float = Field(0.2, ge=0, le=1)
    max_events: int = Field(6, ge=1)
    batch_size: BatchSize = None
    workers: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("audio_description backend", name, AUDIO_DESCRIPTION_BACKENDS)

    def build(self, context: BuildContext) -> AudioDescriptionStage:
        return AudioDescriptionStage(self, context.servers)


def event_spans(
    timeline: list[dict[str, Any]], min_confidence: float, max_events: int
) -> list[dict[str, Any]]:
    """Merge consecutive timeline patches that share a label into timed events."""
    spans: dict[str, list[dict[str, Any]]] = {}
    for patch in timeline:
        for tag in patch["tags"]:
            if tag["confidence"] < min_confidence:
                continue
            runs = spans.setdefault(tag["label"], [])
            if runs and patch["start_s"] <= runs[-1]["end_s"] + 1e-6:
                runs[-1]["end_s"] = patch["end_s"]
                runs[-1]["peak_confidence"] = max(runs[-1]["peak_confidence"], tag["confidence"])
            else:
                runs.append(
                    {
                        "label": tag["label"],
                        "start_s": patch["start_s"],
                        "end_s": patch["end_s"],
                        "peak_confidence": tag["confidence"],
                    }
                )
    events = [run for runs in spans.values() for run in runs]
    events.sort(key=lambda e: (-(e["end_s"] - e["start_s"]) * e["peak_confidence"], e["start_s"]))
    chosen = sorted(events[:max_events], key=lambda e: e["start_s"])
    return [{**e, "peak_confidence": round(e["peak_confidence"], 3)} for e in chosen]


def derived_text(
    events: list[dict[str, Any]], descriptors: dict[str, Any], duration_s: float
) -> str:
    parts = []
    for event in events:
        whole = event["start_s"] <= 0.5 and event["end_s"] >= duration_s - 1.0
        when = "throughout" if whole else f"from {event['start_s']:.1f} s to {event['end_s']:.1f} s"
        parts.append(f"{event['label']} {when}")
    sound = "; ".join(parts) if parts else "no clearly identifiable sound event"
    return f"{sound}. Overall: {', '.join(words_for(descriptors))}."


def recording_cue(item: StageInput) -> dict[str, Any]:
    """The recording cue from the full-band stereo view; without it (a caller that built
    only the 16 kHz view) from that view, whose 8 kHz band limit the output states in
    ``analysed_up_to_hz``."""
    source_channels = item.media.source_channels if item.media is not None else None
    name = AUDIO_44K_STEREO if AUDIO_44K_STEREO in item.views else AUDIO_16K_MONO
    view = item.audio(name)
    return describe_recording(view.samples, view.sample_rate, source_channels)


class AudioDescriptionStage(Stage):
    name = "audio_description"
    produces = "audio_description"

    prompt_version = 1

    def __init__(
        self, settings: AudioDescriptionConfig, servers: ServerSlots | None = None
    ) -> None:
        self.settings = settings
        self.servers = servers
        self.backend_name = settings.backend
        self.min_event_confidence = settings.min_event_confidence
        self.max_events = settings.max_events
        self.needs = (
            ("tagging", AUDIO_16K_MONO, AUDIO_44K_STEREO)
            if settings.backend == DERIVED
            else (AUDIO_16K_MONO,)
        )
        self.workers = settings.workers
        self.batch_size = batch_size_for(settings.batch_size, settings.device, cpu=4)
        self.resources = Resources(cpus=1, gpus=1.0 if settings.device.startswith("cuda") else 0.0)
        self._llm: AudioLLM | None = None

    def _make_llm(self) -> AudioLLM:
        make = AUDIO_DESCRIPTION_BACKENDS[self.backend_name]
        if make is None:
            raise ValueError(f"the {self.backend_name} backend has no model")
        return make(self.settings, self.servers)

    def fingerprint(self) -> dict[str, Any]:
        if self.backend_name == DERIVED:
            return {
                "backend": "derived",
                "version": DerivedDescriber.revision,
                "min_event_confidence": self.min_event_confidence,
                "max_events": self.max_events,
            }
        return {
            "backend": self.backend_name,
            "model": self._make_llm().fingerprint(),
            "prompt": load_prompt("audio_description", self.prompt_version).identity,
        }

    def setup(self) -> None:
        if self.backend_name != DERIVED:
            self._llm = self._make_llm()
            self._llm.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        if self._llm is not None:
            return self._generated(self._llm, batch)
        cues = []
        for item in batch:
            started = time.perf_counter()
            audio = item.audio(AUDIO_16K_MONO)
            descriptors = describe_signal(audio.samples[0], audio.sample_rate)
            events = event_spans(
                item.cues["tagging"].output["timeline"],
                self.min_event_confidence,
                self.max_events,
            )
            output = {
                "generated": False,
                "text": derived_text(events, descriptors, audio.duration_s),
                "events": events,
                "descriptors": descriptors,
                "recording": recording_cue(item),
            }
            cues.append(self.cue(DerivedDescriber(), output, time.perf_counter() - started))
        return cues

    def _generated(self, llm: AudioLLM, batch: Sequence[StageInput]) -> list[Cue]:
        """The batch's descriptions in one call; each clip's time is its share."""
        started = time.perf_counter()
        prompt = load_prompt("audio_description", self.prompt_version)
        signals = [item.audio(AUDIO_16K_MONO).samples[0] for item in batch]
        texts = llm.describe_batch(signals, [prompt.text] * len(batch))
        elapsed = (time.perf_counter() - started) / max(1, len(batch))
        return [
            self.cue(llm, {"generated": True, "text": text}, elapsed).with_prompt_version(
                prompt.identity
            )
            for text in texts
        ]
