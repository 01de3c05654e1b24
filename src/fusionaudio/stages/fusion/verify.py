"""Holding a caption against its plan: every planned fact must survive, and nothing the
plan does not contain may be claimed (a source, music, speech, a speaker's sex, a
number, a place), on top of the text checks every caption gets (leaks, copied speech,
visual details, repetition).

Words are compared as crude stems of the caption's *affirmed* words, so "no music" is
not a claim of music and "dogs barking" states "a dog barks".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fusionaudio.stages.fusion.lexicon import source_vocabulary, stem
from fusionaudio.stages.fusion.plan import SPEAKER_KEYS, CaptionPlan, Fact
from fusionaudio.stages.fusion.validate import (
    affirmed_words,
    check_leaks,
    check_text_quality,
    check_transcript_copy,
    check_visual,
)

NO_MUSIC_WORDS = frozenset(
    """music musical melody melodic melodies song songs tune tunes instrumental chord chords
    harmony tempo soundtrack orchestra orchestral""".split()
)
TALK_WORDS = frozenset(
    """speech speak speaks speaking speaker speakers spoken talk talks talking narration
    narrator narrates says saying said conversation announcer announces""".split()
)
PLACE_WORDS = frozenset(
    """kitchen street city forest woods park farm field beach office studio church stadium
    concert arena restaurant cafe school classroom house home garden yard barn station
    airport highway market jungle desert mountain lake river shore harbor harbour room hall
    indoors outdoors outside inside countryside village zoo theater theatre factory
    battlefield warehouse garage bathroom bedroom""".split()
)
NUMBERS = frozenset(
    """two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred""".split()
)
HEDGES = re.compile(
    r"\b(probably|likely|possibly|perhaps|maybe|may|might|seems?|appears?|sounds? like|what sounds|could be)\b",
    re.I,
)
SEX_WORDS = {w: sex for sex, words in SPEAKER_KEYS.items() for w in words}
MAX_SENTENCES = 4


@dataclass
class Verification:
    problems: list[str] = field(default_factory=list)
    verified: list[str] = field(default_factory=list)  # ids of the facts the caption states

    @property
    def ok(self) -> bool:
        return not self.problems


def _states(fact: Fact, stems: set[str]) -> bool:
    for key in fact.keywords:
        k = key.lower()
        if k in stems or (len(k) >= 4 and any(s.startswith(k) for s in stems)):
            return True
    return False


def stated_facts(text: str, plan: CaptionPlan) -> list[str]:
    stems = {stem(w) for w in affirmed_words(text)} | {w for w in re.findall(r"\d+", text)}
    return [fact.id for fact in plan.facts if _states(fact, stems)]


def verify_caption(text: str, plan: CaptionPlan, check_facts: bool = True) -> Verification:
    """Problems of ``text`` as a caption of ``plan``, and the facts it states."""
    result = Verification()
    affirmed = affirmed_words(text)
    stems = {stem(w) for w in affirmed}
    result.verified = stated_facts(text, plan)
    allowed = plan.allowed_words()
    problems = result.problems
    problems += check_text_quality(text)
    problems += check_leaks(text)
    problems += check_transcript_copy(text, plan.transcript)
    problems += check_visual(text, plan.visual_labels, allowed)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    if len(sentences) > MAX_SENTENCES:
        problems.append(f"{len(sentences)} sentences; write at most 3")
    if check_facts:
        for fact in plan.facts:
            if fact.required and fact.id not in result.verified:
                problems.append(f"leaves out a planned fact: {fact.text}")
        hedged = [f for f in plan.facts if f.hedged and f.required]
        if hedged and not HEDGES.search(text):
            problems.append(f"states as certain what is only probable: {hedged[0].text}")
    extra = sorted((stems & source_vocabulary()) - allowed)
    if extra:
        problems.append("names a source that is not in the plan: " + ", ".join(extra[:4]))
    if plan.music is None and affirmed & NO_MUSIC_WORDS:
        problems.append("claims music, which the plan does not contain")
    if plan.voice is None and affirmed & TALK_WORDS:
        problems.append("claims speech, which the plan does not contain")
    planned_sex = plan.voice.speaker if plan.voice is not None else None
    said_sex = {SEX_WORDS[w] for w in affirmed if w in SEX_WORDS}
    hedged_match = bool(plan.voice and plan.voice.speaker_hedged and planned_sex in said_sex)
    if said_sex and said_sex != {planned_sex} and not hedged_match:
        problems.append("states a speaker's sex or age that the plan does not hold")
    allowed_numbers = plan.numbers()
    for number in re.findall(r"\b\d+(?:\.\d+)?\b", text):
        if number not in allowed_numbers:
            problems.append(f"states the number {number}, which the plan does not hold")
    for word in sorted(affirmed & NUMBERS):
        if word not in allowed_numbers:
            problems.append(f"states the number '{word}', which the plan does not hold")
    places = allowed_places(plan, allowed)
    for word in sorted(affirmed & PLACE_WORDS):
        if word not in places:
            problems.append(f"names a place ('{word}') that the plan does not hold")
    return result


def allowed_places(plan: CaptionPlan, allowed_words: set[str]) -> set[str]:
    places: set[str] = set()
    if plan.setting:
        places |= {plan.setting, "inside" if plan.setting == "indoors" else "outside"}
    for name, _ in plan.recording:
        if name == "room":
            places.add("room")
        if name == "large hall":
            places |= {"hall", "room"}
    places |= {w for w in allowed_words if w in PLACE_WORDS}
    return places
