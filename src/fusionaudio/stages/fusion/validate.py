"""Checks on what the LLM wrote, after generation. Each returns the problems it found;
an answer with problems is retried (with the problems fed back) and, if it never passes,
recorded as the clip's error."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

UNCERTAIN = "UNCERTAIN_AUDIO_INFORMATION_DETECTED"

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "we",
        "you",
        "he",
        "she",
        "they",
        "i",
        "me",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "them",
        "us",
        "as",
        "so",
        "if",
        "then",
        "than",
        "not",
        "no",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "will",
        "would",
        "can",
        "could",
        "should",
        "may",
        "might",
        "must",
        "just",
        "very",
        "also",
        "into",
        "over",
        "under",
        "about",
        "up",
        "down",
        "out",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "when",
        "where",
        "why",
        "all",
        "any",
        "some",
        "each",
        "more",
        "most",
        "other",
        "such",
        "only",
        "own",
        "same",
        "too",
        "s",
        "t",
    ]
)
LEAK_PATTERNS = (
    (re.compile(r"\d+(\.\d+)?\s*%"), "mentions a percentage"),
    (re.compile(r"\b0\.\d{2,}\b"), "mentions a probability"),
    (re.compile(r"\b[A-Z][\w ,]*\(\d+%?\)"), "copies tag syntax"),
    (
        re.compile(
            r"\b(labels?|labelled|labeled|confidence|evidence|detector|yamnet|audioset|whisper|transcript|tags?|withheld)\b",
            re.I,
        ),
        "talks about the cues instead of the sound",
    ),
)
VISUAL_WORDS = re.compile(
    r"\b(seen|see|sees|visible|visibly|looks like|looking at|camera|frame|frames|video(?! game)|image|picture|screen|"
    r"colou?red|red|blue|green|yellow|purple|orange|pink|wearing|shirt|dressed|background shows)\b",
    re.I,
)


def content_words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z']+", text.lower()) if w not in STOPWORDS and len(w) > 2]


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in an answer, past a reasoning model's <think> block or a code fence."""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S).strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            return None
        try:
            value = json.loads(text[start : end + 1])
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def check_text_quality(text: str, min_words: int = 6) -> list[str]:
    words = re.findall(r"\w+", text.lower())
    problems = []
    if len(words) < min_words:
        problems.append(f"too short ({len(words)} words)")
        return problems
    counts = Counter(words)
    top, n = counts.most_common(1)[0]
    if len(words) >= 12 and n / len(words) > 0.25 and top not in STOPWORDS:
        problems.append(f"repetitive (the word '{top}' is {n} of {len(words)} words)")
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    if grams and len(set(grams)) < 0.7 * len(grams):
        problems.append("repetitive (repeated phrases)")
    return problems


def check_leaks(text: str) -> list[str]:
    return [message for pattern, message in LEAK_PATTERNS if pattern.search(text)]


def check_transcript_copy(text: str, transcript: str | None) -> list[str]:
    """Speech content in the caption: a shared 3-word run, or many of the transcript's words."""
    if not transcript:
        return []
    said = content_words(transcript)
    written = content_words(text)
    shared_runs = ngrams(re.findall(r"[a-z']+", transcript.lower()), 3) & ngrams(
        re.findall(r"[a-z']+", text.lower()), 3
    )
    meaningful = [g for g in shared_runs if sum(w not in STOPWORDS for w in g) >= 2]
    problems = []
    if meaningful:
        problems.append(
            "quotes the speech: " + " / ".join(" ".join(g) for g in sorted(meaningful)[:3])
        )
    distinct_said = set(said)
    overlap = distinct_said & set(written)
    if len(distinct_said) >= 4 and len(overlap) >= 3 and len(overlap) / len(distinct_said) >= 0.3:
        problems.append(
            "paraphrases the speech (shares the words " + ", ".join(sorted(overlap)[:6]) + ")"
        )
    return problems


def check_visual(text: str, visual_labels: list[str], audio_words: set[str]) -> list[str]:
    """Visual-only details: sight words, or objects seen on video that no audio cue supports."""
    problems = []
    match = VISUAL_WORDS.search(text)
    if match:
        problems.append(f"describes what is seen ('{match.group(0)}')")
    written = set(content_words(text))
    for label in visual_labels:
        words = set(content_words(label))
        if words and words <= written and not words & audio_words:
            problems.append(f"names '{label}', which only the video shows")
    return problems


SPEECH_WORDS = frozenset(
    [
        "speech",
        "speak",
        "speaks",
        "speaking",
        "speaker",
        "speakers",
        "spoken",
        "voice",
        "voices",
        "voiced",
        "talk",
        "talks",
        "talking",
        "narration",
        "narrator",
        "narrates",
        "says",
        "saying",
        "said",
        "conversation",
        "vocal",
        "vocals",
        "sing",
        "sings",
        "singing",
        "singer",
    ]
)
MUSIC_WORDS = frozenset(
    [
        "music",
        "musical",
        "melody",
        "melodic",
        "melodies",
        "song",
        "songs",
        "tune",
        "tunes",
        "instrument",
        "instruments",
        "instrumental",
        "beat",
        "beats",
        "rhythm",
        "rhythmic",
        "chord",
        "chords",
        "harmony",
        "piano",
        "guitar",
        "synth",
        "synthesizer",
        "synthesizers",
        "drum",
        "drums",
        "bass",
        "strings",
        "orchestra",
        "orchestral",
        "tempo",
        "soundtrack",
    ]
)


NEGATIONS = frozenset(
    {"no", "not", "without", "never", "nor", "absent", "free", "lacks", "lacking"}
)


def affirmed_words(text: str) -> set[str]:
    """Words of ``text`` not negated by one of the four words before them ("no noise or music")."""
    tokens = re.findall(r"[a-z]+", text.lower())
    return {
        token for i, token in enumerate(tokens) if not NEGATIONS & set(tokens[max(0, i - 4) : i])
    }


def check_example_copy(text: str, examples: list[str]) -> list[str]:
    """A caption that shares two 4-word runs with a prompt's example copied it."""
    written = ngrams(re.findall(r"[a-z']+", text.lower()), 4)
    for example in examples:
        if len(written & ngrams(re.findall(r"[a-z']+", example.lower()), 4)) >= 2:
            return ["copies an example caption instead of describing this clip"]
    return []
