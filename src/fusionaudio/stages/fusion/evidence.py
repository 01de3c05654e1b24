"""From cues to evidence: everything code can decide is decided here, not by the LLM.

A 1.5B model does not obey negative rules ("never quote the speech", "never add visual
details"), so for small models what is forbidden is removed before the model sees it:
the voice is described by presence, language and length, never by its words; video
objects appear only as candidate identities for a sound the audio leaves ambiguous, and
only when no confident tag already names it (the paper's "active correction"). The
reliability gate's evidence count is computed here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fusionaudio.schema import Cue

HIGH_CONFIDENCE = 0.5
LOW_CONFIDENCE = 0.1
EVENT_CONFIDENCE = 0.35
DETECTED_CONFIDENCE = 0.3  # a detected sound this likely contradicts supplied tags it excludes
LANGUAGES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ar": "Arabic",
    "hi": "Hindi", "tr": "Turkish", "pl": "Polish", "sv": "Swedish", "uk": "Ukrainian", "vi": "Vietnamese",
    "cs": "Czech", "sk": "Slovak", "el": "Greek", "fi": "Finnish", "da": "Danish", "no": "Norwegian",
    "hu": "Hungarian", "ro": "Romanian", "bg": "Bulgarian", "hr": "Croatian", "sr": "Serbian",
    "sl": "Slovenian", "ca": "Catalan", "he": "Hebrew", "fa": "Persian", "id": "Indonesian",
    "ms": "Malay", "th": "Thai", "ta": "Tamil", "ur": "Urdu", "bn": "Bengali", "lt": "Lithuanian",
    "lv": "Latvian", "et": "Estonian", "af": "Afrikaans", "sw": "Swahili", "la": "Latin",
}  # fmt: skip  # a timed event this confident in some patch counts as a fact

# Generic AudioSet labels that name a kind of sound, not its source: video may refine these.
AMBIGUOUS_SOUNDS = frozenset(
    {
        "Rumble", "Clicking", "Rustle", "Mechanisms", "Tick", "Thump, thud", "Knock", "Tap",
        "Squeak", "Creak", "Whir", "Hum", "Buzz", "Animal", "Domestic animals, pets", "Wild animals",
        "Livestock, farm animals, working animals", "Vehicle", "Engine", "Noise", "Sound effect",
        "Inside, small room", "Inside, large room or hall", "Outside, urban or manmade",
        "Outside, rural or natural", "Environmental noise", "Static", "Clatter", "Bang", "Thunk",
    }
)  # fmt: skip
GENERIC_LABELS = frozenset({"Silence", "Music", "Speech", "Musical instrument"})


@dataclass
class Evidence:
    duration_s: float
    confident_sounds: list[str] = field(default_factory=list)
    possible_sounds: list[str] = field(default_factory=list)
    given_tags: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    character: list[str] = field(default_factory=list)
    description: str | None = None
    description_generated: bool = False
    voice: str | None = None
    transcript: str | None = None
    music: str | None = None
    visual_candidates: list[str] = field(default_factory=list)
    visual_record: str | None = None
    silent: bool = False
    conflicts: list[str] = field(default_factory=list)
    facts: int = 0
    tags_with_scores: list[str] = field(default_factory=list)

    @property
    def voice_present(self) -> bool:
        return bool(self.voice and self.voice.startswith("a voice"))

    @property
    def music_present(self) -> bool:
        return bool(self.music and self.music != "no music detected")


def _tags(tagging: Cue | None) -> dict[str, float]:
    if tagging is None:
        return {}
    return {str(k): float(v) for k, v in tagging.output.get("posteriors", {}).items()}


def _voice(vad: Cue | None, asr: Cue | None) -> tuple[str | None, str | None]:
    if vad is None and asr is None:
        return None, None
    transcript = None
    if asr is not None and asr.output.get("transcribed"):
        transcript = str(asr.output.get("text") or "").strip() or None
    has_speech = bool(vad.output.get("has_speech")) if vad is not None else transcript is not None
    if not has_speech:
        return "no voice detected", None
    seconds = float(vad.output.get("speech_s", 0.0)) if vad is not None else 0.0
    parts = ["a voice speaks"]
    language = LANGUAGES.get(str(asr.output.get("language"))) if asr is not None else None
    if language:
        parts.append(f"in {language}")
    if seconds:
        parts.append(f"for about {seconds:.0f} s")
    if transcript:
        parts.append(f"(about {len(transcript.split())} words)")
    return " ".join(parts), transcript


def _music(music: Cue | None) -> str | None:
    if music is None:
        return None
    out = music.output
    if not out.get("gate", {}).get("open"):
        return "no music detected"
    if out.get("generated"):
        return str(out.get("text", "")).strip() or "music is present"
    bits = ["music is present"]
    for key, name in (
        ("genres", "possible genre"),
        ("instruments", "possible instruments"),
        ("moods", "possible mood"),
    ):
        labels = [c["label"] for c in out.get(key, [])]
        if labels:
            bits.append(f"{name}: {', '.join(labels)}")
    if out.get("tempo_bpm"):
        bits.append(f"tempo about {round(float(out['tempo_bpm']))} BPM")
    if out.get("key"):
        bits.append(f"key {out['key']} {out.get('mode', '')}".strip())
    return "; ".join(bits)


def _visual(vision: Cue | None) -> tuple[list[str], str | None]:
    if vision is None:
        return [], None
    out = vision.output
    if out.get("generated"):
        return [], str(out.get("text", ""))
    objects = [
        o["label"] for o in out.get("objects", []) if float(o.get("mean_confidence", 0)) >= 0.15
    ]
    faces = int(out.get("max_faces", 0))
    seen = list(objects) + (["a human face"] if faces else [])
    record = "; ".join(
        f"{f['time_s']:.0f}s: " + ", ".join(o["label"] for o in f["objects"])
        for f in out.get("frames", [])
    )
    return seen, record or None


def build_evidence(cues: dict[str, Cue], duration_s: float, silent: bool) -> Evidence:
    tags = _tags(cues.get("tagging"))
    ev = Evidence(duration_s=round(duration_s, 1), silent=silent)
    ev.confident_sounds = [label for label, p in tags.items() if p >= HIGH_CONFIDENCE]
    ev.possible_sounds = [
        label for label, p in tags.items() if LOW_CONFIDENCE <= p < HIGH_CONFIDENCE
    ]
    ev.tags_with_scores = [
        f"{label}({round(p * 100)}%)" for label, p in tags.items() if p >= LOW_CONFIDENCE
    ]
    given = cues.get("given_tags")
    if given is not None:
        for tag in given.output.get("tags", []):
            ev.given_tags.append(tag["label"])
            confident = tag.get("confidence") is None or tag["confidence"] >= HIGH_CONFIDENCE
            if confident and tag["label"] not in ev.confident_sounds:
                ev.confident_sounds.insert(0, tag["label"])
            ev.tags_with_scores.insert(
                0,
                tag["label"]
                if tag.get("confidence") is None
                else f"{tag['label']}({round(tag['confidence'] * 100)}%)",
            )
        confident_detected = [label for label, p in tags.items() if p >= DETECTED_CONFIDENCE]
        supported = [label for label in ev.given_tags if tags.get(label, 0.0) >= 0.05]
        if ev.given_tags and confident_detected and not supported:
            ev.conflicts.append(
                f"the supplied tags ({', '.join(ev.given_tags)}) are not heard by the sound-event "
                f"detector, which is confident of {', '.join(confident_detected)}"
            )
    reliable_events = 0
    description = cues.get("audio_description")
    if description is not None:
        out = description.output
        ev.description_generated = bool(out.get("generated"))
        if ev.description_generated:
            ev.description = str(out.get("text", "")).strip() or None
        else:
            for event in out.get("events", []):
                if float(event.get("peak_confidence", 1.0)) >= EVENT_CONFIDENCE:
                    reliable_events += 1
                whole = event["start_s"] <= 0.5 and event["end_s"] >= duration_s - 1.0
                when = "throughout" if whole else f"{event['start_s']:.1f}-{event['end_s']:.1f} s"
                ev.events.append(f"{event['label']} ({when})")
            text = str(out.get("text", ""))
            if "Overall:" in text:
                ev.character = [
                    w.strip() for w in text.split("Overall:", 1)[1].strip(" .").split(",")
                ]
    ev.voice, ev.transcript = _voice(cues.get("vad"), cues.get("asr"))
    ev.music = _music(cues.get("music"))
    seen, ev.visual_record = _visual(cues.get("vision"))
    specific = [
        s for s in ev.confident_sounds if s not in AMBIGUOUS_SOUNDS and s not in GENERIC_LABELS
    ]
    ambiguous = [s for s in ev.confident_sounds + ev.possible_sounds if s in AMBIGUOUS_SOUNDS]
    if ambiguous and not specific and seen:
        ev.visual_candidates = seen
    ev.facts = (
        len(ev.confident_sounds)
        + reliable_events
        + (1 if ev.voice_present else 0)
        + (1 if ev.music_present else 0)
        + (1 if ev.description_generated and ev.description else 0)
    )
    return ev


def uncertain_reason(ev: Evidence) -> str | None:
    """The reliability gate, decided in code: too little or contradictory evidence."""
    if ev.silent:
        return "the clip is silent or nearly so"
    if ev.conflicts:
        return "experts contradict each other: " + "; ".join(ev.conflicts)
    if ev.facts == 0:
        return "no expert found a reliable sound"
    return None


def render_small(ev: Evidence) -> str:
    """Redacted evidence for small models: no words of the speech, no visual details."""
    lines = [f"Duration: {ev.duration_s:g} seconds."]
    lines.append("Confident sounds: " + (", ".join(ev.confident_sounds) or "none") + ".")
    if ev.possible_sounds:
        lines.append("Possible sounds: " + ", ".join(ev.possible_sounds) + ".")
    if ev.events:
        lines.append("Timed events: " + "; ".join(ev.events) + ".")
    if ev.description:
        lines.append("Sound description: " + ev.description)
    if ev.character:
        lines.append("Sound character: " + ", ".join(ev.character) + ".")
    if ev.voice:
        lines.append("Voice: " + ev.voice + ".")
    if ev.music:
        lines.append("Music: " + ev.music + ".")
    if ev.visual_candidates:
        lines.append(
            "Possible sources of the ambiguous sound (from video, use only to name the sound): "
            + ", ".join(ev.visual_candidates)
            + "."
        )
    return "\n".join(lines)


def render_paper(ev: Evidence) -> str:
    """The paper's five inputs, each delimited, for large models that follow the rules."""
    sections = {
        "Audio Tags": ", ".join(ev.tags_with_scores) or "(none)",
        "Audio Description": ev.description or "; ".join(ev.events) or "(none)",
        "Speech Content": ev.transcript
        or ("(no speech)" if not ev.voice or not ev.voice.startswith("a voice") else "(empty)"),
        "Music Description": ev.music or "(none)",
        "Video Description": ev.visual_record or "(none)",
    }
    blocks = [f'<input name="{name}">\n{text}\n</input>' for name, text in sections.items()]
    facts = [f"Duration: {ev.duration_s:g} s."]
    if ev.visual_candidates:
        facts.append(
            "Active correction allowed: the video may name the ambiguous sound as one of: "
            + ", ".join(ev.visual_candidates)
            + "."
        )
    else:
        facts.append("Active correction not allowed: the video must not add or change any sound.")
    return (
        "\n".join(blocks)
        + '\n<input name="Facts decided in code">\n'
        + "\n".join(facts)
        + "\n</input>"
    )
