"""Screening Whisper's output for hallucinations before anything downstream reads it.

Whisper writes text for sounds that are not speech: a cluck becomes "No!", rain becomes
"1 tbc" five times, applause becomes "Thank you." (on the labelled recordings in
``shared/data/sounds``, 33 of 40 non-speech classes got some text). Each rule below is
either one of Whisper's own decoding heuristics (the transformers backend does not apply
them, and faster-whisper, after retrying at higher temperatures, still keeps its last
guess), or a hallucination pattern reported across Whisper's users:

- ``no speech``: the segment's no-speech probability is over 0.6 while its average
  log-probability is under -1.0 (Whisper's ``no_speech_threshold`` and
  ``logprob_threshold`` defaults: together they mean "silence");
- ``low confidence``: average log-probability under -1.0 (Whisper's threshold for "this
  decoding failed"; a segment still under it after the temperature fallback is one
  Whisper itself does not trust);
- ``repeated``: the same segment text three or more times, or one word four or more
  times in a row ("oh, oh, oh, oh"): the decoder looping, not a speaker;
- ``stock phrase``: the whole segment is one of the phrases Whisper writes over silence
  and music (subtitle credits, "thank you", "the end of the video", ...);
- ``no words``: punctuation, numbers or symbols only;
- ``interjections only``: the whole transcript is "oh", "woo", "ha ha": a vocal sound,
  which the caption describes from the tagger, not words someone said.

A rejected segment is dropped from ``text`` and listed with its reason; when nothing is
left the cue says ``transcribed: false`` with the reasons, so no language or speech
content is claimed from it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from itertools import pairwise
from typing import Any

FILTER_VERSION = 1
NO_SPEECH_PROB = 0.6  # Whisper's no_speech_threshold
LOGPROB_MIN = -1.0  # Whisper's logprob_threshold
SEGMENT_REPEATS = 3  # the same segment text this many times is a loop
WORD_RUN = 4  # the same word this many times in a row is a loop

STOCK_PHRASES = frozenset(
    {
        "thank you",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and see you next time",
        "please subscribe",
        "like and subscribe",
        "please like and subscribe",
        "subscribe to my channel",
        "the end",
        "the end of the video",
        "see you next time",
        "see you in the next video",
        "bye",
        "bye bye",
        "you",
        "subtitles by the amara org community",
        "subtitles by",
        "transcribed by",
        "translated by",
        "amara org",
        "music",
        "applause",
        "laughter",
        "silence",
        "エンディング",
        "ご視聴ありがとうございました",
        "продолжение следует",
        "спасибо за просмотр",
        "субтитры сделал",
        "untertitel der amara org community",
        "untertitel im auftrag des zdf",
        "sous titres réalisés par la communauté d amara org",
        "sous titrage st 501",
        "sottotitoli creati dalla comunità amara org",
        "字幕",
        "谢谢观看",
        "請不吝點贊訂閱轉發打賞支持明鏡與點點欄目",
    }
)
INTERJECTIONS = frozenset(
    """oh ohh ooh oooh ah ahh aah aha uh uhh um umm hm hmm mm mmm huh ha hah haha hahaha he
    hee heh hehe ho whoa woah wow woo whoo wee whee yay yeah yah ya ye hey hi ow ouch oops
    pfft psst shh tsk ugh argh eh er no oh-oh uh-oh boo aw aww""".split()
)


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"[^\W_]+", text))


def _has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _word_run(words: list[str]) -> bool:
    run = 1
    for a, b in pairwise(words):
        run = run + 1 if a == b else 1
        if run >= WORD_RUN:
            return True
    return False


def segment_reason(segment: dict[str, Any], repeats: int) -> str | None:
    """Why one segment is not speech, or None."""
    text = str(segment.get("text", ""))
    normal = _normal(text)
    no_speech = segment.get("no_speech_prob")
    logprob = segment.get("avg_logprob")
    if not _has_letters(text):
        return "no words"
    silent = no_speech is not None and no_speech > NO_SPEECH_PROB
    if silent and logprob is not None and logprob < LOGPROB_MIN:
        return f"no speech (no-speech probability {no_speech:.2f}, log-probability {logprob:.2f})"
    if logprob is not None and logprob < LOGPROB_MIN:
        return f"low confidence (log-probability {logprob:.2f} < {LOGPROB_MIN})"
    if repeats >= SEGMENT_REPEATS:
        return f"repeated ({repeats} times)"
    if _word_run(normal.split()):
        return "repeated (one word over and over)"
    if normal in STOCK_PHRASES:
        return "stock phrase"
    return None


def screen_transcript(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` (text, language, segments) with hallucinated segments removed and listed."""
    segments = list(result.get("segments") or [])
    counts = Counter(_normal(str(s.get("text", ""))) for s in segments)
    kept, rejected = [], []
    for segment in segments:
        reason = segment_reason(segment, counts[_normal(str(segment.get("text", "")))])
        if reason is None:
            kept.append(segment)
        else:
            rejected.append({**segment, "reason": reason})
    words = _normal(" ".join(str(s["text"]) for s in kept)).split()
    if kept and words and all(w in INTERJECTIONS for w in words):
        rejected += [{**s, "reason": "interjections only"} for s in kept]
        kept = []
    text = " ".join(str(s["text"]) for s in kept).strip()
    out = {**result, "text": text, "segments": kept, "rejected_segments": rejected}
    if rejected and not kept:
        reasons = sorted({str(r["reason"]).split(" (")[0] for r in rejected})
        out["transcribed"] = False
        out["reason"] = "transcript rejected as hallucinated: " + ", ".join(reasons)
    return out
