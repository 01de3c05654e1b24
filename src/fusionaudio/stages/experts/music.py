"""Music: a gate first, then a description only where the gate opens.

The paper runs its music captioner only when YAMNet hears music, because music
captioners describe music that is not there. Offline, the description is ranked genre,
instrument and mood candidates from YAMNet's music sub-classes (with YAMNet's known
confusions resolved by the table below), vocals from the singing classes and the
separated vocal stem, and tempo, key and sections from DSP; with an audio LLM backend, the
music prompt is used. See ``docs/cues/recording_music.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, field_validator

from fusionaudio.backends.audioset_ontology import MusicClasses, music_classes
from fusionaudio.backends.music_dsp import LibrosaMusicDsp
from fusionaudio.backends.openai_http import ServerSlots
from fusionaudio.schema import Cue
from fusionaudio.stages.base import ACCOMPANIMENT_16K, AUDIO_16K_MONO, Resources, Stage, StageInput
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

CUE_VERSION = 2
"""Bumped when the derived output changes (ranked candidates, confidences, sections, vocals)."""

TEMPO_STATED_MIN_CONFIDENCE = 0.5
"""``tempo_bpm`` is stated (non-null) only from this tempo confidence on: below it the beat
tracker still returns a number, but on free-time music it is arbitrary. The raw estimate
stays in ``tempo_estimate_bpm``."""
KEY_STATED_MIN_CONFIDENCE = 0.2
"""``key`` is stated only from this key confidence on (the raw best key stays in
``key_estimate``); percussion and noise give margins near zero."""

# --- YAMNet's known confusions -----------------------------------------------------------
GENERIC_INSTRUMENT = "Musical instrument"
"""Fires on nearly every piece of music: no information about which instrument. Never a
candidate, only evidence for the specific labels."""

# The AudioSet plucked-string and percussion classes, named once: the merge table folds
# them under their parent label, the family table names their family.
PLUCKED_STRINGS = frozenset(
    {
        "Guitar", "Electric guitar", "Bass guitar", "Acoustic guitar", "Steel guitar, slide guitar",
        "Banjo", "Sitar", "Mandolin", "Zither", "Ukulele", "Harp",
    }
)  # fmt: skip
PERCUSSION = frozenset(
    {
        "Percussion", "Drum kit", "Drum machine", "Drum", "Snare drum", "Rimshot", "Drum roll",
        "Bass drum", "Timpani", "Tabla", "Cymbal", "Hi-hat", "Wood block", "Tambourine",
        "Rattle (instrument)", "Maraca", "Gong", "Mallet percussion", "Marimba, xylophone",
        "Glockenspiel", "Vibraphone", "Steelpan",
    }
)  # fmt: skip

PARENTS: dict[str, frozenset[str]] = {
    # AudioSet parents fire together with (and usually above) their children: a parent is
    # true whenever a child is, so when a child is reasonably supported the parent's score
    # is folded into the child, the informative label.
    "Plucked string instrument": PLUCKED_STRINGS,
    "Guitar": frozenset(
        {
            "Electric guitar",
            "Bass guitar",
            "Acoustic guitar",
            "Steel guitar, slide guitar",
            "Tapping (guitar technique)",
            "Strum",
        }
    ),
    "Keyboard (musical)": frozenset(
        {
            "Piano",
            "Electric piano",
            "Organ",
            "Electronic organ",
            "Hammond organ",
            "Synthesizer",
            "Sampler",
            "Harpsichord",
        }
    ),
    "Organ": frozenset({"Electronic organ", "Hammond organ"}),
    "Percussion": PERCUSSION - {"Percussion"},
    "Drum": frozenset({"Snare drum", "Rimshot", "Drum roll", "Bass drum", "Timpani", "Tabla"}),
    "Mallet percussion": frozenset(
        {"Marimba, xylophone", "Glockenspiel", "Vibraphone", "Steelpan"}
    ),
    "Brass instrument": frozenset({"French horn", "Trumpet", "Trombone"}),
    "Bowed string instrument": frozenset(
        {"String section", "Violin, fiddle", "Pizzicato", "Cello", "Double bass"}
    ),
    "Wind instrument, woodwind instrument": frozenset(
        {"Flute", "Saxophone", "Clarinet", "Bagpipes"}
    ),
    "Bell": frozenset(
        {
            "Church bell",
            "Jingle bell",
            "Bicycle bell",
            "Tubular bells",
            "Change ringing (campanology)",
        }
    ),
    # Genres: "Electronic music" co-fires with every electronic sub-genre.
    "Electronic music": frozenset(
        {
            "House music",
            "Techno",
            "Dubstep",
            "Drum and bass",
            "Electronica",
            "Electronic dance music",
            "Trance music",
        }
    ),
    "Rock music": frozenset(
        {
            "Heavy metal",
            "Punk rock",
            "Grunge",
            "Progressive rock",
            "Rock and roll",
            "Psychedelic rock",
        }
    ),
}
CHILD_SHARE_OF_PARENT = 0.25
"""A child takes over its parent's score when it reaches a quarter of it: YAMNet's child
posteriors are typically 2-4x below the parent's on the same sound (the parent pools the
training examples of all children). Below that the parent stays as the candidate."""

CONFUSABLE: dict[tuple[str, str], tuple[str | None, str]] = {
    # Pairs YAMNet cannot separate on some material (observed on the real set and the
    # examples, see docs/cues/recording_music.md). When both fire within CONFUSION_RATIO
    # of each other they become one candidate: the preferred label (None: the stronger)
    # with the higher score, the other named in its evidence.
    ("Harp", "Acoustic guitar"): (
        "Acoustic guitar",
        "a nylon-string (classical) guitar fires Harp above Guitar; guitars are far more "
        "common in recordings than harps",
    ),
    ("Zither", "Acoustic guitar"): ("Acoustic guitar", "as Harp: plucked nylon strings"),
    ("Electronic music", "Video game music"): (
        None,
        "chiptune and tracker music (square waves, short samples) fires both",
    ),
    ("Synthesizer", "Organ"): (None, "sustained synthetic and tracker tones fire both"),
    ("Violin, fiddle", "String section"): (None, "one violin and a section are confused"),
    ("Drum kit", "Drum machine"): (None, "acoustic and programmed drums are confused"),
    ("Chant", "Choir"): ("Choir", "a choir singing sustained chords fires Chant and Mantra"),
}
CONFUSION_RATIO = 0.4
"""Both labels within a factor 2.5: YAMNet really cannot decide (the classical guitar of
the real set: Harp 0.24, Guitar 0.10)."""

FUNCTION_GENRES = frozenset(
    {
        "Background music",
        "Theme music",
        "Soundtrack music",
        "Jingle (music)",
        "Song",
        "Independent music",
        "Music for children",
        "Christmas music",
        "Wedding music",
        "Dance music",
        "Lullaby",
    }
)
"""Labels for what music is used for rather than its style; YAMNet gives them small but
non-zero scores on almost any music, so they are ranked at half weight behind styles."""
FUNCTION_GENRE_WEIGHT = 0.5

INSTRUMENT_FAMILY: dict[str, str] = {
    **dict.fromkeys(
        sorted(
            PLUCKED_STRINGS | {"Plucked string instrument", "Tapping (guitar technique)", "Strum"}
        ),
        "plucked strings",
    ),
    **dict.fromkeys(
        [
            "Keyboard (musical)",
            "Piano",
            "Electric piano",
            "Organ",
            "Electronic organ",
            "Hammond organ",
            "Harpsichord",
        ],
        "keyboard",
    ),
    **dict.fromkeys(
        [
            "Synthesizer",
            "Sampler",
            "Drum machine",
            "Theremin",
            "Scratching (performance technique)",
        ],
        "electronic",
    ),
    **dict.fromkeys(sorted(PERCUSSION - {"Drum machine"}), "percussion"),
    **dict.fromkeys(
        [
            "Bell",
            "Church bell",
            "Jingle bell",
            "Bicycle bell",
            "Tubular bells",
            "Tuning fork",
            "Chime",
            "Wind chime",
            "Change ringing (campanology)",
            "Singing bowl",
        ],
        "bells",
    ),
    **dict.fromkeys(
        ["Brass instrument", "French horn", "Trumpet", "Trombone", "Shofar", "Didgeridoo"],
        "brass",
    ),
    **dict.fromkeys(
        [
            "Bowed string instrument",
            "String section",
            "Violin, fiddle",
            "Pizzicato",
            "Cello",
            "Double bass",
        ],
        "bowed strings",
    ),
    **dict.fromkeys(
        [
            "Wind instrument, woodwind instrument",
            "Flute",
            "Saxophone",
            "Clarinet",
            "Bagpipes",
            "Harmonica",
            "Accordion",
        ],
        "woodwind",
    ),
    "Orchestra": "ensemble",
}
"""The family of each instrument label (for the caption's coarse claim and for tests)."""

# --- vocals ------------------------------------------------------------------------------
VOCAL_GENRES = frozenset({"Vocal music", "A capella", "Opera", "Rapping"})
"""Genres that imply a voice; they count as singing evidence."""
SINGING_FULL = 0.3
"""A clip-mean singing posterior of 0.3 is full evidence from the tags: YAMNet's mean over
patches is diluted by instrumental passages, so a sung song rarely averages above 0.5."""
VOCAL_STEM_SHARE_NONE = 0.05
VOCAL_STEM_SHARE_FULL = 0.3
"""Separation leaks: instrumental music still puts ~2-5 % of its energy in the vocal stem;
a lead voice takes 20-50 %. Shares are mapped linearly from 0.05 (no evidence) to 0.3."""
STEM_WEIGHT = 0.4
"""With a separated vocal stem, the stem decides 40 % of the vocals confidence, the tags
60 %: the tags name singing, the stem measures a voice-like source (and also picks up lead
wind instruments)."""
VOCALS_MIN_CONFIDENCE = 0.5


class GateOnly:
    name = "yamnet_gate"
    model_id = "YAMNet music classes (from the tagging cue)"
    revision = "v1"


def _patch_counts(timeline: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for patch in timeline:
        for tag in patch["tags"]:
            counts[tag["label"]] = counts.get(tag["label"], 0) + 1
    return counts


def rank_candidates(
    posteriors: dict[str, float],
    timeline: list[dict[str, Any]],
    group: frozenset[str],
    minimum: float,
    top: int,
    families: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Ranked ``{"label", "score", "evidence"}`` candidates of one class group, with the
    parent and confusion rules above applied; ``score`` is a YAMNet clip-mean posterior
    (after folding), ``evidence`` says where it came from."""
    scores = {label: p for label, p in posteriors.items() if label in group and p > 0}
    notes: dict[str, list[str]] = {label: [] for label in scores}
    counts = _patch_counts(timeline)
    patches = len(timeline)
    scores.pop(GENERIC_INSTRUMENT, None)
    # Parents, most specific first (a child that is itself a parent is resolved first).
    for parent in sorted(PARENTS, key=lambda p: len(PARENTS[p])):
        if parent not in scores:
            continue
        children = [c for c in PARENTS[parent] if c in scores]
        if not children:
            continue
        child = max(children, key=lambda c: scores[c])
        if scores[child] >= CHILD_SHARE_OF_PARENT * scores[parent]:
            notes[child].append(f"parent {parent!r} {scores[parent]:.2f} folded in")
            scores[child] = max(scores[child], scores.pop(parent))
    for (a, b), (preferred, why) in CONFUSABLE.items():
        if a in scores and b in scores:
            strong, weak = (a, b) if scores[a] >= scores[b] else (b, a)
            if scores[weak] >= CONFUSION_RATIO * scores[strong]:
                keep = preferred or strong
                other = b if keep == a else a
                notes[keep].append(
                    f"also fires as {other!r} {scores[other]:.2f} (known confusion: {why})"
                )
                scores[keep] = max(scores.pop(other), scores[keep])
    ranked = []
    for label, score in scores.items():
        weight = FUNCTION_GENRE_WEIGHT if label in FUNCTION_GENRES else 1.0
        if score < minimum:
            continue
        evidence = [f"YAMNet clip mean {posteriors[label]:.3f}"]
        if patches:
            evidence.append(f"top-3 in {counts.get(label, 0)}/{patches} patches")
        if label in FUNCTION_GENRES:
            evidence.append("use, not style: ranked at half weight")
        candidate: dict[str, Any] = {
            "label": label,
            "score": round(score, 3),
            "evidence": "; ".join(evidence + notes.get(label, [])),
        }
        if families is not None:
            candidate["family"] = families.get(label, "other")
        ranked.append((score * weight, candidate))
    ranked.sort(key=lambda pair: (-pair[0], pair[1]["label"]))
    return [candidate for _, candidate in ranked[:top]]


def vocals_evidence(
    posteriors: dict[str, float],
    timeline: list[dict[str, Any]],
    singing: frozenset[str],
    vocal_stem_share: float | None,
) -> dict[str, Any]:
    """Vocals from the singing classes (and vocal genres) of the tags, plus the share of
    energy in the separated vocal stem when separation ran."""
    labels = singing | VOCAL_GENRES
    found = {label: p for label, p in posteriors.items() if label in labels}
    best_label = max(found, key=lambda label: found[label]) if found else None
    tag_score = found[best_label] if best_label else 0.0
    sung_patches = sum(
        1 for patch in timeline if any(tag["label"] in labels for tag in patch["tags"])
    )
    tag_confidence = min(1.0, tag_score / SINGING_FULL)
    evidence = [
        f"singing tags: {best_label} {tag_score:.3f}" if best_label else "no singing tags",
        f"singing in top-3 of {sung_patches}/{len(timeline)} patches",
    ]
    confidence = tag_confidence
    if vocal_stem_share is not None:
        stem = (vocal_stem_share - VOCAL_STEM_SHARE_NONE) / (
            VOCAL_STEM_SHARE_FULL - VOCAL_STEM_SHARE_NONE
        )
        stem = min(1.0, max(0.0, stem))
        confidence = (1 - STEM_WEIGHT) * tag_confidence + STEM_WEIGHT * stem
        evidence.append(f"vocal stem holds {100 * vocal_stem_share:.0f}% of the energy")
    return {
        "vocals": confidence >= VOCALS_MIN_CONFIDENCE,
        "vocals_confidence": round(confidence, 2),
        "vocals_evidence": "; ".join(evidence),
    }


DERIVED = "derived"
# backend name (``experts.music.backend``) -> the audio LLM, not yet loaded; None: no
# model, the stage derives the description from the tagging cue and DSP
MUSIC_BACKENDS: dict[str, Callable[[MusicConfig, ServerSlots | None], AudioLLM] | None] = {
    DERIVED: None,
    "openai_audio": openai_audio,
    "qwen2_audio": qwen2_audio,
}


class MusicConfig(RoleConfig):
    backend: str = DERIVED
    model: str | None = None
    server: ServerConfig | None = None
    device: str = "cpu"
    gate_threshold: float = Field(0.3, ge=0, le=1, description="YAMNet 'Music' score to open")
    batch_size: BatchSize = None
    workers: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("music backend", name, MUSIC_BACKENDS)

    def build(self, context: BuildContext) -> MusicStage:
        return MusicStage(self, context)


class MusicStage(Stage):
    name = "music"
    produces = "music"
    prompt_version = 1
    candidate_min_confidence = 0.015

    def __init__(self, settings: MusicConfig, context: BuildContext | None = None) -> None:
        context = context or BuildContext()
        self.settings = settings
        self.servers = context.servers
        # the accompaniment stem when separation runs
        self.audio_view = ACCOMPANIMENT_16K if context.separated else AUDIO_16K_MONO
        self.needs = ("tagging", self.audio_view)
        # The separated accompaniment comes from the separation stage, whose cue measures
        # the vocal stem's energy share: vocals evidence beside the singing tags.
        self.wants = ("separation",) if self.audio_view == ACCOMPANIMENT_16K else ()
        self.backend_name = settings.backend
        self.gate_threshold = settings.gate_threshold
        self.workers = settings.workers
        self.batch_size = batch_size_for(settings.batch_size, settings.device, cpu=2)
        self.resources = Resources(cpus=1, gpus=1.0 if settings.device.startswith("cuda") else 0.0)
        self._classes: MusicClasses | None = None
        self._dsp: LibrosaMusicDsp | None = None
        self._llm: AudioLLM | None = None

    def _make_llm(self) -> AudioLLM:
        make = MUSIC_BACKENDS[self.backend_name]
        if make is None:
            raise ValueError(f"the {self.backend_name} backend has no model")
        return make(self.settings, self.servers)

    def fingerprint(self) -> dict[str, Any]:
        base: dict[str, Any] = {
            "backend": self.backend_name,
            "audio_view": self.audio_view,
            "gate_threshold": self.gate_threshold,
        }
        if self.backend_name == DERIVED:
            return {
                **base,
                "candidate_min_confidence": self.candidate_min_confidence,
                "dsp": LibrosaMusicDsp().revision,
                "version": CUE_VERSION,
            }
        return {
            **base,
            "model": self._make_llm().fingerprint(),
            "prompt": load_prompt("music_description", self.prompt_version).identity,
        }

    def setup(self) -> None:
        self._classes = music_classes()
        if self.backend_name == DERIVED:
            self._dsp = LibrosaMusicDsp()
            self._dsp.warm_up()
        else:
            self._llm = self._make_llm()
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
        started = time.perf_counter()
        gates = [self.gate(item.cues["tagging"].output["posteriors"]) for item in batch]
        opened = [i for i, gate in enumerate(gates) if gate["open"]]
        texts: dict[int, str] = {}
        prompt = load_prompt("music_description", self.prompt_version)
        if self._llm is not None and opened:
            signals = [batch[i].audio(self.audio_view).samples[0] for i in opened]
            answers = self._llm.describe_batch(signals, [prompt.text] * len(opened))
            texts = dict(zip(opened, answers, strict=True))
        share = (time.perf_counter() - started) / max(1, len(texts))
        cues = []
        for i, (item, gate) in enumerate(zip(batch, gates, strict=True)):
            began = time.perf_counter()
            output: dict[str, Any] = {"gate": gate}
            backend: Any = GateOnly()
            if i in texts:
                backend = self._llm
                output.update(generated=True, text=texts[i])
            elif gate["open"] and self._dsp is not None:
                backend = self._dsp
                audio = item.audio(self.audio_view)
                output.update(self.derived(item, audio.samples[0], audio.sample_rate))
            spent = time.perf_counter() - began + (share if i in texts else 0.0)
            cue = self.cue(backend, output, spent)
            cues.append(cue.with_prompt_version(prompt.identity) if i in texts else cue)
        return cues

    def derived(self, item: StageInput, signal: Any, sample_rate: int) -> dict[str, Any]:
        """The offline description (gate open): ranked candidates, vocals, tempo, key and
        sections. Tempo and key are stated only when confident."""
        assert self._classes is not None and self._dsp is not None
        tagging = item.cues["tagging"].output
        posteriors: dict[str, float] = tagging["posteriors"]
        timeline: list[dict[str, Any]] = tagging.get("timeline", [])
        classes, minimum = self._classes, self.candidate_min_confidence
        separation = item.cues.get("separation")
        share = None if separation is None else separation.output.get("vocals_energy_share")
        tempo = self._dsp.tempo(signal, sample_rate)
        key = self._dsp.key(signal, sample_rate)
        tempo_stated = tempo["tempo_confidence"] >= TEMPO_STATED_MIN_CONFIDENCE
        key_stated = key["key_confidence"] >= KEY_STATED_MIN_CONFIDENCE
        return {
            "generated": False,
            "genres": rank_candidates(posteriors, timeline, classes.genres, minimum, 3),
            "instruments": rank_candidates(
                posteriors, timeline, classes.instruments, minimum, 5, INSTRUMENT_FAMILY
            ),
            "moods": rank_candidates(posteriors, timeline, classes.moods, minimum, 2),
            **vocals_evidence(
                posteriors, timeline, classes.singing, None if share is None else float(share)
            ),
            "tempo_bpm": tempo["tempo_bpm"] if tempo_stated else None,
            "tempo_estimate_bpm": tempo["tempo_bpm"],
            "tempo_confidence": tempo["tempo_confidence"],
            "beats": tempo["beats"],
            "beat_strength": tempo["beat_strength"],
            "key": key["key"] if key_stated else None,
            "mode": key["mode"] if key_stated else None,
            "key_estimate": f"{key['key']} {key['mode']}",
            "key_confidence": key["key_confidence"],
            "key_margin": key["key_margin"],
            "sections": self._dsp.sections(signal, sample_rate),
        }
