"""The caption plan: what a caption will say, decided in code from the cues.

A small model cannot be trusted to select facts; code can. The plan picks the sources
that the tagger is confident of, that persist and that agree with their ontology
siblings (the tagging cue's ``sources``), orders them in time, carries their counts, and
adds the few most salient voice, music and recording attributes. Each becomes a
:class:`Fact` with the words a caption must use to state it; the LLM only writes the
plan as English (``realize.py``) and ``verify.py`` holds the sentence against it.

The paper's trust rules map onto the plan: confident audio tags are facts, weak ones
are left out; speech is described by its voice, never its words; video may only name a
source the audio leaves ambiguous (active correction); no confident evidence means
``uncertain``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from fusionaudio.backends.audioset_ontology import music_classes
from fusionaudio.schema import Cue
from fusionaudio.stages.fusion.evidence import AMBIGUOUS_SOUNDS, LANGUAGES, build_evidence
from fusionaudio.stages.fusion.lexicon import LEXICON, SourceWords, stem, words_for

# Fallback when the tagging cue has no ``sources`` (an older cache, another tagger): a
# clip-level posterior this high is a confident source.
FALLBACK_CONFIDENT = 0.5
# Speech needs two experts to agree: voice activity, and the tagger hearing speech at
# least this strongly (VAD alone fires on laughter, screams and singing).
SPEECH_TAG_MIN = 0.2
SPEECH_LABELS = (
    "Speech",
    "Male speech, man speaking",
    "Female speech, woman speaking",
    "Child speech, kid speaking",
    "Conversation",
    "Narration, monologue",
)
SINGING_LABELS = ("Singing", "Choir", "Male singing", "Female singing", "Child singing", "Rapping")
# A human vocal sound that is not speech, stronger than speech: the voice is not "speaking".
NON_SPEECH_VOCAL = (
    "Laughter",
    "Giggle",
    "Screaming",
    "Shout",
    "Yell",
    "Cough",
    "Sneeze",
    "Crying, sobbing",
    "Baby cry, infant cry",
    "Whistling",
)
# Labels that name a kind of signal, not something that makes a sound: a caption built on
# them says nothing ("what sounds like noise"), so they never stand as a source.
NOT_A_SOURCE = frozenset(
    {
        "Noise", "Static", "White noise", "Pink noise", "Environmental noise", "Silence",
        "Sound effect", "Hum", "Mains hum", "Buzz", "Distortion", "Echo", "Reverberation",
        "Sine wave", "Harmonic", "Chirp tone", "Field recording", "Inside, small room",
        "Inside, large room or hall", "Inside, public space", "Outside, urban or manmade",
        "Outside, rural or natural", "Cacophony", "Throbbing", "Vibration", "Music",
        "Musical instrument", "Speech", "Background music", "Theme music", "Soundtrack music",
        "Video game music", "Jingle (music)",
    }
)  # fmt: skip
SPEAKER_HEDGE_BELOW = 0.6  # the voice cue's speaker confidence under which a caption hedges
MUSIC_CANDIDATE_MIN = (
    0.1  # genre/instrument score to be named (the music cue already ranks and merges confusions)
)
# "Music plays" is a claim about the whole clip, so it needs the tagger's clip-level Music
# posterior at its decision point (sigmoid 0.5). The music gate (0.3) only decides whether
# the music expert runs; between the two, a howl, a gong or a smithy's rhythm opens the
# gate without being music.
MUSIC_CLAIM_MIN = 0.5
TEMPO_CONFIDENCE_MIN = 0.5
KEY_CONFIDENCE_MIN = 0.5
RECORDING_CONFIDENCE_MIN = 0.6
MAX_SOURCES = 3
MAX_RECORDING_ATTRIBUTES = 2
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
).split()


def number_word(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


@dataclass(frozen=True)
class Fact:
    """One thing the caption states, and the words by which a reader can find it."""

    id: str
    kind: str  # source | count | order | voice | music | recording | setting
    text: str  # the fact in plain English, for the model and for QA
    keywords: tuple[str, ...]  # stems; the fact survives when the caption affirms one
    required: bool
    confidence: float
    hedged: bool = False


@dataclass(frozen=True)
class PlannedSource:
    label: str
    tags: tuple[str, ...]
    role: str  # primary | secondary
    start_s: float
    end_s: float
    confidence: float
    coverage: float
    count: int | None
    bursts: int | None
    hedged: bool
    via_video: str | None = None

    def words(self) -> SourceWords:
        if self.via_video is not None:
            return words_for(self.via_video)
        return words_for(self.label, self.tags)


@dataclass(frozen=True)
class VoicePlan:
    singing: bool
    speaker: str | None  # adult male | adult female | child
    speaker_hedged: bool
    language: str | None
    rate: str | None
    pitch: str | None
    speakers: int
    speech_s: float


@dataclass(frozen=True)
class MusicPlan:
    genre: str | None
    instruments: tuple[str, ...]
    tempo_bpm: int | None
    key: str | None
    vocals: bool


@dataclass
class CaptionPlan:
    duration_s: float
    sources: list[PlannedSource] = field(default_factory=list)
    voice: VoicePlan | None = None
    music: MusicPlan | None = None
    recording: list[tuple[str, str]] = field(default_factory=list)  # (attribute, phrase)
    setting: str | None = None
    facts: list[Fact] = field(default_factory=list)
    ambiguities: list[str] = field(default_factory=list)
    uncertain: str | None = None
    transcript: str | None = None  # never shown to a model; the verifier checks for copies
    visual_labels: list[str] = field(default_factory=list)  # every object seen on video

    @property
    def ordered(self) -> bool:
        return any(f.kind == "order" for f in self.facts)

    def allowed_words(self) -> set[str]:
        """Stems of every source word the caption may use."""
        allowed: set[str] = set()
        for source in self.sources:
            allowed |= source.words().words()
            for tag in (source.label, *source.tags):
                allowed |= {stem(w) for w in re.findall(r"[a-z]+", tag.lower())}
        if self.music is not None:
            for name in (self.music.genre or "", *self.music.instruments):
                allowed |= {stem(w) for w in re.findall(r"[a-z]+", name.lower())}
        for fact in self.facts:  # whatever the plan itself says may be said
            allowed |= {stem(w) for w in re.findall(r"[a-z]+", fact.text.lower())}
        return allowed

    def numbers(self) -> set[str]:
        """Numbers the caption may state (as digits or words)."""
        found: set[str] = set()
        for source in self.sources:
            for n in (source.count, source.bursts):
                if n is not None:
                    found |= {str(n), number_word(n)}
        if self.voice is not None and self.voice.speakers > 1:
            found |= {str(self.voice.speakers), number_word(self.voice.speakers)}
        if self.music is not None and self.music.tempo_bpm is not None:
            found.add(str(self.music.tempo_bpm))
        return found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("transcript")
        return data


def _tags(cues: dict[str, Cue]) -> dict[str, float]:
    tagging = cues.get("tagging")
    if tagging is None:
        return {}
    return {str(k): float(v) for k, v in tagging.output.get("posteriors", {}).items()}


def _accepted_sources(cues: dict[str, Cue], duration_s: float) -> list[dict[str, Any]]:
    """Accepted source families from the tagging cue, or confident tags as a fallback."""
    tagging = cues.get("tagging")
    if tagging is None:
        return []
    sources = tagging.output.get("sources")
    if isinstance(sources, list):
        return [s for s in sources if s.get("accepted")]
    return [
        {
            "label": label,
            "kind": "music"
            if label == "Music"
            else "speech"
            if label in SPEECH_LABELS
            else "specific",
            "tags": [label],
            "segments": [{"start_s": 0.0, "end_s": duration_s, "peak": p, "mean": p}],
            "confidence": p,
            "coverage": 1.0,
            "count": None,
            "bursts": None,
        }
        for label, p in _tags(cues).items()
        if p >= FALLBACK_CONFIDENT and label not in {"Silence"}
    ]


def _plan_sources(
    accepted: list[dict[str, Any]], visual: list[str], duration_s: float, music: bool
) -> tuple[list[PlannedSource], str | None]:
    # Without a music claim, a confident instrument is a sound source of its own (a gong
    # struck, a bell); with one, the music plan names the instruments.
    kinds = ("specific", "generic") if music else ("specific", "generic", "music")
    instruments = music_classes().instruments
    candidates = [
        s
        for s in accepted
        if s.get("kind", "specific") in kinds
        and s["label"] not in NOT_A_SOURCE
        and (s.get("kind") != "music" or s["label"] in instruments)
    ]
    scene = next((s for s in accepted if s.get("kind") == "scene"), None)
    specific = [s for s in candidates if s.get("kind", "specific") in ("specific", "music")]
    pool = specific or candidates
    pool.sort(key=lambda s: -float(s["confidence"]) * (0.5 + float(s.get("coverage", 1.0))))
    planned = []
    for rank, s in enumerate(pool[:MAX_SOURCES]):
        segments = s.get("segments") or [{"start_s": 0.0, "end_s": duration_s}]
        generic = s.get("kind") == "generic" or s["label"] in AMBIGUOUS_SOUNDS
        via_video = None
        if generic and rank == 0:
            via_video = _visual_identity(visual)
        planned.append(
            PlannedSource(
                label=str(s["label"]),
                tags=tuple(str(t) for t in s.get("tags", [])),
                role="primary" if rank == 0 else "secondary",
                start_s=float(segments[0]["start_s"]),
                end_s=float(segments[-1]["end_s"]),
                confidence=round(float(s["confidence"]), 3),
                coverage=round(float(s.get("coverage", 1.0)), 3),
                count=s.get("count"),
                bursts=_bursts(s.get("count"), s.get("bursts")),
                hedged=generic or via_video is not None,
                via_video=via_video,
            )
        )
    setting = None
    if scene is not None:
        label = str(scene["label"]).lower()
        setting = (
            "indoors"
            if label.startswith("inside")
            else "outdoors"
            if label.startswith("outside")
            else None
        )
    return planned, setting


def _bursts(count: int | None, bursts: int | None) -> int | None:
    """Bursts are worth saying only when they group several events each."""
    if count is None or bursts is None or not 1 < bursts < count:
        return None
    return int(bursts)


def _visual_identity(visual: list[str]) -> str | None:
    """Active correction: a video object that the lexicon knows as a sound source."""
    for label in visual:
        for word in re.findall(r"[a-z]+", label.lower()):
            if word in LEXICON:
                return str(word)
    return None


def _voice(
    cues: dict[str, Cue], tags: dict[str, float], accepted: list[dict[str, Any]]
) -> VoicePlan | None:
    vad = cues.get("vad")
    voice = cues.get("voice")
    vout = voice.output if voice is not None else {}
    # Voice activity ignores singing; the voice cue analyses a clip the tagger hears sung.
    sung = bool(vout.get("present") and vout.get("singing"))
    if not sung and (vad is None or not vad.output.get("has_speech")):
        return None
    speech = max((tags.get(label, 0.0) for label in SPEECH_LABELS), default=0.0)
    singing_tag = max((tags.get(label, 0.0) for label in SINGING_LABELS), default=0.0)
    other = max((tags.get(label, 0.0) for label in NON_SPEECH_VOCAL), default=0.0)
    accepted_speech = any(s.get("kind") == "speech" for s in accepted)
    singing = bool(vout.get("singing")) or (singing_tag >= SPEECH_TAG_MIN and singing_tag > speech)
    if not singing and not accepted_speech and (speech < SPEECH_TAG_MIN or speech < other):
        return None
    speaker = vout.get("speaker")
    language = None
    asr = cues.get("asr")
    sure_language = asr is not None and float(asr.output.get("language_probability") or 0.0) >= 0.7
    if asr is not None and asr.output.get("transcribed") and not singing and sure_language:
        language = LANGUAGES.get(str(asr.output.get("language")))
    return VoicePlan(
        singing=singing,
        speaker=str(speaker) if speaker else None,
        speaker_hedged=float(vout.get("speaker_confidence") or 0.0) < SPEAKER_HEDGE_BELOW,
        language=language,
        rate=vout.get("rate") if not singing else None,
        pitch=vout.get("pitch_range") if vout.get("pitch_range") in ("low", "high") else None,
        speakers=max(1, int(vout.get("speakers_estimate") or 1)),
        speech_s=float(vout.get("speech_s") or (vad.output.get("speech_s", 0.0) if vad else 0.0)),
    )


def _top(candidates: list[dict[str, Any]], n: int) -> list[str]:
    ranked = sorted(
        candidates, key=lambda c: -float(c.get("score", c.get("confidence", 0.0)) or 0.0)
    )
    return [
        str(c["label"])
        for c in ranked
        if float(c.get("score", c.get("confidence", 0.0)) or 0.0) >= MUSIC_CANDIDATE_MIN
    ][:n]


def _music(cues: dict[str, Cue], tags: dict[str, float]) -> MusicPlan | None:
    music = cues.get("music")
    if music is None or not music.output.get("gate", {}).get("open"):
        return None
    out = music.output
    if out.get("generated"):
        return MusicPlan(None, (), None, None, False)
    score = out["gate"].get("music_score")
    if float(tags.get("Music", 0.0) if score is None else score) < MUSIC_CLAIM_MIN:
        return None
    genres = _top(out.get("genres", []), 1)
    tempo = out.get("tempo_bpm")
    tempo_ok = (
        tempo is not None and float(out.get("tempo_confidence") or 0.0) >= TEMPO_CONFIDENCE_MIN
    )
    key_ok = out.get("key") and float(out.get("key_confidence") or 0.0) >= KEY_CONFIDENCE_MIN
    vocals = out.get("vocals")
    return MusicPlan(
        genre=genres[0] if genres else None,
        instruments=tuple(_top(out.get("instruments", []), 2)),
        tempo_bpm=round(float(tempo)) if tempo is not None and tempo_ok else None,
        key=f"{out['key']} {out.get('mode', '')}".strip() if key_ok else None,
        vocals=bool(vocals) if isinstance(vocals, bool) else False,
    )


RECORDING_PHRASES = {
    "clipping": ("is distorted by clipping", ("clip", "distort", "distortion")),
    "telephone": (
        "sounds thin and narrow-band, like a telephone line",
        ("telephone", "phone", "narrow", "thin"),
    ),
    "band-limited": (
        "sounds muffled and band-limited, like an old recording",
        ("muffled", "band", "limit", "old", "lo", "dull"),
    ),
    "large hall": (
        "echoes as in a large, reverberant space",
        ("echo", "reverberant", "reverb", "hall", "spacious", "cavernous"),
    ),
    "room": ("has the slight echo of a room", ("echo", "room", "reverb", "reverberant")),
    "dry": ("is dry and close", ("dry", "close", "intimate")),
    "noisy": ("has a noticeable background hiss", ("hiss", "noise", "noisy")),
    "bursts": ("comes in short bursts", ("burst", "short", "intermittent")),
    "rising": ("grows louder over time", ("louder", "grow", "rise", "build", "swell")),
    "falling": ("fades away toward the end", ("fade", "quieter", "die", "away")),
}


def _recording(cues: dict[str, Cue]) -> list[tuple[str, str]]:
    description = cues.get("audio_description")
    if description is None:
        return []
    rec = description.output.get("recording")
    if not isinstance(rec, dict):
        return []
    conf = rec.get("confidence", {}) or {}

    def sure(name: str) -> bool:
        return float(conf.get(name, 1.0)) >= RECORDING_CONFIDENCE_MIN

    found: list[str] = []
    if rec.get("clipping"):
        found.append("clipping")
    if rec.get("band") in ("telephone", "band-limited") and sure("band"):
        found.append(str(rec["band"]))
    if rec.get("reverb") in ("large hall", "room") and sure("reverb"):
        found.append(str(rec["reverb"]))
    snr = rec.get("snr_db")
    if snr is not None and float(snr) < 15 and sure("noise"):
        found.append("noisy")
    if rec.get("dynamics") in ("bursts", "rising", "falling") and sure("dynamics"):
        found.append(str(rec["dynamics"]))
    return [(name, RECORDING_PHRASES[name][0]) for name in found[:MAX_RECORDING_ATTRIBUTES]]


def _visual_objects(cues: dict[str, Cue]) -> tuple[list[str], list[str]]:
    """Objects seen clearly enough to name an ambiguous sound, and every object seen in any
    frame (a caption may name none of those unless the plan holds it)."""
    vision = cues.get("vision")
    if vision is None or vision.output.get("generated"):
        return [], []
    clear = [
        str(o["label"])
        for o in vision.output.get("objects", [])
        if float(o.get("mean_confidence", 0)) >= 0.15
    ]
    seen = sorted(
        {str(o["label"]) for f in vision.output.get("frames", []) for o in f.get("objects", [])}
    )
    return clear, seen


def _stems(text: str) -> tuple[str, ...]:
    return tuple(sorted({stem(w) for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}))


SPEECH_KEYS = ("speak", "speech", "voice", "talk", "say", "narrat", "speaker")
SINGING_KEYS = ("sing", "singer", "vocal", "voice", "song")
MUSIC_KEYS = ("music", "musical", "melody", "tune", "song", "instrumental", "play")
SPEAKER_KEYS = {
    "adult male": ("man", "male", "men"),
    "adult female": ("woman", "female", "women"),
    "child": ("child", "kid", "boy", "girl", "young"),
}
ORDER_KEYS = ("then", "after", "followed", "later", "before", "first", "until", "give", "gives")


def _facts(plan: CaptionPlan) -> list[Fact]:
    facts: list[Fact] = []
    for source in plan.sources:
        w = source.words()
        verb = w.verb
        facts.append(
            Fact(
                id=f"source:{source.label}",
                kind="source",
                text=("probably " if source.hedged else "") + f"{w.noun} {verb}",
                keywords=tuple(sorted(w.words())),
                required=True,
                confidence=source.confidence,
                hedged=source.hedged,
            )
        )
        if source.count is not None and source.count > 1:
            bursts = (
                f" in {number_word(source.bursts)} bursts"
                if source.bursts is not None and source.bursts > 1
                else ""
            )
            facts.append(
                Fact(
                    id=f"count:{source.label}",
                    kind="count",
                    text=f"{w.noun} {verb} {number_word(source.count)} times{bursts}",
                    keywords=(number_word(source.count), str(source.count)),
                    required=True,
                    confidence=source.confidence,
                )
            )
    timed = sorted(plan.sources, key=lambda s: s.start_s)
    if len(timed) >= 2 and timed[1].start_s - timed[0].start_s >= 1.0:
        first, second = timed[0].words(), timed[1].words()
        facts.append(
            Fact(
                id="order",
                kind="order",
                text=f"first {first.noun} {first.verb}, then {second.noun} {second.verb}",
                keywords=ORDER_KEYS,
                required=True,
                confidence=min(timed[0].confidence, timed[1].confidence),
            )
        )
    if plan.voice is not None:
        v = plan.voice
        does = "sings" if v.singing else "speaks"
        who = "a voice"
        if v.speakers > 1 and not v.singing:
            who = f"{number_word(v.speakers)} voices"
            does = "take turns speaking"
        facts.append(
            Fact(
                "voice",
                "voice",
                f"{who} {does}",
                SINGING_KEYS if v.singing else SPEECH_KEYS,
                True,
                1.0,
            )
        )
        if v.speaker is not None:
            facts.append(
                Fact(
                    "voice.speaker",
                    "voice",
                    f"the voice is {'probably ' if v.speaker_hedged else ''}an {v.speaker}'s"
                    if v.speaker.startswith("adult")
                    else f"the voice is {'probably ' if v.speaker_hedged else ''}a child's",
                    SPEAKER_KEYS.get(v.speaker, ()),
                    not v.speaker_hedged,
                    0.5 if v.speaker_hedged else 0.8,
                    v.speaker_hedged,
                )
            )
        if v.language is not None:
            facts.append(
                Fact(
                    "voice.language",
                    "voice",
                    f"the language is {v.language}",
                    _stems(v.language),
                    True,
                    0.8,
                )
            )
        if v.rate is not None:
            facts.append(
                Fact(
                    "voice.rate",
                    "voice",
                    f"the voice speaks at a {v.rate} pace",
                    (*_stems(v.rate), "pace", "quick", "rapid", "slowly", "quickly"),
                    False,
                    0.6,
                )
            )
        if v.pitch is not None:
            facts.append(
                Fact(
                    "voice.pitch",
                    "voice",
                    f"the voice is {v.pitch}-pitched",
                    (*_stems(v.pitch), "pitch", "pitched", "deep"),
                    False,
                    0.6,
                )
            )
    if plan.music is not None:
        m = plan.music
        named = _stems(" ".join([m.genre or "", *m.instruments]))
        facts.append(Fact("music", "music", "music plays", MUSIC_KEYS + named, True, 1.0))
        if m.genre:
            facts.append(
                Fact(
                    "music.genre",
                    "music",
                    f"the music is {m.genre.lower()}",
                    _stems(m.genre),
                    False,
                    0.5,
                    True,
                )
            )
        if m.instruments:
            names = " and ".join(i.lower() for i in m.instruments)
            facts.append(
                Fact(
                    "music.instruments",
                    "music",
                    f"the music features {names}",
                    _stems(" ".join(m.instruments)),
                    False,
                    0.5,
                    True,
                )
            )
        if m.tempo_bpm is not None:
            facts.append(
                Fact(
                    "music.tempo",
                    "music",
                    f"the tempo is about {m.tempo_bpm} BPM",
                    (str(m.tempo_bpm), "bpm", "tempo"),
                    True,
                    0.6,
                )
            )
        if m.key is not None:
            facts.append(
                Fact(
                    "music.key",
                    "music",
                    f"the key is {m.key}",
                    _stems(m.key.split()[-1]),
                    False,
                    0.5,
                )
            )
    for name, phrase in plan.recording:
        facts.append(
            Fact(
                f"recording.{name}",
                "recording",
                f"the recording {phrase}",
                RECORDING_PHRASES[name][1],
                False,
                0.7,
            )
        )
    if plan.setting is not None:
        facts.append(
            Fact("setting", "setting", f"the sound is {plan.setting}", (plan.setting,), False, 0.6)
        )
    return facts


def build_plan(cues: dict[str, Cue], duration_s: float, silent: bool) -> CaptionPlan:
    """Cues -> plan. ``uncertain`` is set when the evidence cannot carry a caption."""
    ev = build_evidence(cues, duration_s, silent)
    plan = CaptionPlan(duration_s=round(duration_s, 1), transcript=ev.transcript)
    clear_objects, plan.visual_labels = _visual_objects(cues)
    if silent:
        plan.uncertain = "the clip is silent or nearly so"
        return plan
    if ev.conflicts:
        plan.uncertain = "experts contradict each other: " + "; ".join(ev.conflicts)
        return plan
    tags = _tags(cues)
    accepted = _accepted_sources(cues, duration_s)
    plan.music = _music(cues, tags)
    plan.sources, plan.setting = _plan_sources(
        accepted, clear_objects, duration_s, music=plan.music is not None
    )
    given = cues.get("given_tags")
    if given is not None:
        known = {s.label for s in plan.sources}
        for tag in given.output.get("tags", []):
            confident = tag.get("confidence") is None or tag["confidence"] >= FALLBACK_CONFIDENT
            if confident and tag["label"] not in known and len(plan.sources) < MAX_SOURCES:
                plan.sources.append(
                    PlannedSource(
                        str(tag["label"]), (), "secondary" if plan.sources else "primary",
                        0.0, duration_s, float(tag.get("confidence") or 1.0), 1.0, None, None, False,
                    )
                )  # fmt: skip
    plan.voice = _voice(cues, tags, accepted)
    plan.recording = _recording(cues)
    if not plan.sources and plan.voice is None and plan.music is None:
        plan.uncertain = "no expert found a confident, persistent sound source"
        return plan
    plan.facts = _facts(plan)
    rejected = []
    tagging = cues.get("tagging")
    if tagging is not None and isinstance(tagging.output.get("sources"), list):
        primary = plan.sources[0].label if plan.sources else None
        for s in tagging.output["sources"]:
            if not s.get("accepted") and primary and "sibling" in str(s.get("why", "")):
                rejected.append(
                    f"the {words_for(primary).noun.removeprefix('a ').removeprefix('an ')} could also be {words_for(str(s['label'])).noun}"
                )
    plan.ambiguities = rejected[:2]
    return plan
