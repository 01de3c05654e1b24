"""From a caption plan to words: the plan as the model's input, and a deterministic
caption written by code when the model's answers fail.

The template caption is the guarantee that no valid clip is lost to a model that wrote
badly: it states every planned fact, hedges what the plan hedges, and varies its
sentence shapes with the plan's content (never at random), so two different clips do
not share one caption.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fusionaudio.stages.fusion.plan import CaptionPlan, PlannedSource, number_word


def render_plan(plan: CaptionPlan) -> str:
    """The plan's facts, numbered (QA cites them by number); nothing else reaches the model."""
    return "\n".join(f"{index}. {fact.text}." for index, fact in enumerate(plan.facts, 1))


def render_draft(plan: CaptionPlan) -> str:
    """What the small model rewrites: the template caption, which states every fact. A
    1.5B model keeps facts it only has to rephrase; from a list it drops counts."""
    return realize_template(plan)


def _choice(plan: CaptionPlan, salt: str, options: list[str]) -> str:
    digest = hashlib.blake2b((salt + repr(plan.facts)).encode(), digest_size=4).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _source_clause(source: PlannedSource, plan: CaptionPlan) -> str:
    w = source.words()
    noun = w.noun
    if source.hedged:
        noun = f"what sounds like {noun}"
    clause = f"{noun} {w.verb}"
    if source.count is not None and source.count > 1:
        clause += f" {number_word(source.count)} times"
        if source.bursts is not None and source.bursts > 1:
            clause += f" in {number_word(source.bursts)} bursts"
    elif source.count == 1:
        clause += " once"
    elif source.coverage >= 0.8 and plan.duration_s >= 3:
        clause += _choice(plan, source.label, [" throughout", " steadily", " for the whole clip"])
    return clause


def _sources_sentence(plan: CaptionPlan) -> str | None:
    if not plan.sources:
        return None
    if plan.ordered:
        timed = sorted(plan.sources, key=lambda s: s.start_s)
        first, rest = timed[0], timed[1:]
        text = _cap(_source_clause(first, plan))
        joiner = _choice(plan, "order", [", then ", "; after that, ", ", followed later as "])
        if joiner.endswith("as "):
            joiner = ", and then "
        return text + joiner + ", then ".join(_source_clause(s, plan) for s in rest) + "."
    primary, secondary = plan.sources[0], plan.sources[1:]
    text = _cap(_source_clause(primary, plan))
    if not secondary:
        return text + "."
    others = " and ".join(_source_clause(s, plan) for s in secondary)
    form = _choice(plan, "background", ["while", "background", "as"])
    if form == "background":
        return f"{text}. In the background, {others}."
    return f"{text}, {form} {others}."


def _voice_sentence(plan: CaptionPlan) -> str | None:
    v = plan.voice
    if v is None:
        return None
    if v.speaker is None:
        who = "a voice"
    elif v.speaker_hedged:
        who = (
            f"a voice, probably an {v.speaker}'s,"
            if v.speaker.startswith("adult")
            else "a voice, probably a child's,"
        )
    else:
        person = {"adult male": "man", "adult female": "woman", "child": "child"}.get(
            v.speaker, v.speaker
        )
        who = f"a {person}"
    if v.speakers > 1 and not v.singing:
        text = f"{number_word(v.speakers)} voices take turns speaking"
    else:
        text = f"{who} {'sings' if v.singing else 'speaks'}"
    if v.language:
        text += f" in {v.language}"
    if v.rate:
        text += f" at a {v.rate} pace"
    if v.pitch:
        text += f", {v.pitch} in pitch"
    return _cap(text) + "."


def _music_sentence(plan: CaptionPlan) -> str | None:
    m = plan.music
    if m is None:
        return None
    genre = m.genre.lower() if m.genre else ""
    text = f"{genre} plays" if genre.endswith("music") else f"{genre} music plays".lstrip()
    if m.instruments:
        text += " with " + " and ".join(i.lower() for i in m.instruments)
    if m.tempo_bpm is not None:
        text += f" at about {m.tempo_bpm} BPM"
    if m.key:
        text += f" in {m.key}"
    return _cap(text) + "."


def _recording_sentence(plan: CaptionPlan) -> str | None:
    phrases = [phrase for _, phrase in plan.recording]
    if plan.setting:
        phrases.append(f"was made {plan.setting}")
    if not phrases:
        return None
    return "The recording " + " and ".join(phrases) + "."


def realize_template(plan: CaptionPlan) -> str:
    """A grammatical caption stating every fact of the plan, built by code."""
    sentences = [
        s
        for s in (
            _sources_sentence(plan),
            _voice_sentence(plan),
            _music_sentence(plan),
            _recording_sentence(plan),
        )
        if s
    ]
    return " ".join(sentences)


def template_pairs(plan: CaptionPlan) -> list[dict[str, Any]]:
    """Question-answer pairs written by code from the plan, each naming its facts: the
    fallback when the model's pairs fail, and never more than the plan holds."""
    ids = {fact.id for fact in plan.facts}
    pairs: list[dict[str, Any]] = []

    def add(kind: str, question: str, answer: str | None, facts: list[str]) -> None:
        if answer and all(f in ids for f in facts):
            pairs.append(
                {
                    "type": kind,
                    "question": question,
                    "answer": answer,
                    "facts": facts,
                    "realized_by": "template",
                }
            )

    if plan.sources:
        primary = plan.sources[0]
        w = primary.words()
        noun = f"what sounds like {w.noun}" if primary.hedged else w.noun
        add(
            "cause",
            "What produces the main sound in this recording?",
            _cap(f"{noun} {w.verb}") + ".",
            [f"source:{primary.label}"],
        )
        if primary.count is not None and primary.count > 1:
            add(
                "temporal_dynamics",
                "How many times does the main sound occur?",
                _cap(_source_clause(primary, plan)) + ".",
                [f"source:{primary.label}", f"count:{primary.label}"],
            )
        if len(plan.sources) > 1:
            second = plan.sources[1]
            sw = second.words()
            if plan.ordered:
                add(
                    "temporal_dynamics",
                    "In what order are the sounds heard?",
                    _sources_sentence(plan),
                    ["order", f"source:{primary.label}", f"source:{second.label}"],
                )
            add(
                "foreground_background",
                "Which sound dominates, and which is less prominent?",
                _cap(
                    f"{w.noun} {w.verb} most prominently, while {sw.noun} {sw.verb} less prominently."
                ),
                [f"source:{primary.label}", f"source:{second.label}"],
            )
    if plan.voice is not None:
        voice_facts = [f.id for f in plan.facts if f.kind == "voice"]
        add(
            "acoustic_analysis",
            "What can be said about the voice?",
            _voice_sentence(plan),
            voice_facts,
        )
    if plan.music is not None:
        music_facts = [f.id for f in plan.facts if f.kind == "music"]
        add("acoustic_analysis", "What music is heard?", _music_sentence(plan), music_facts)
    if plan.recording or plan.setting:
        rec_facts = [f.id for f in plan.facts if f.kind in ("recording", "setting")]
        add(
            "acoustic_analysis",
            "How does the recording itself sound?",
            _recording_sentence(plan),
            rec_facts,
        )
    return pairs
