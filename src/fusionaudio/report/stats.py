"""The statistics of a run's captions, gathered in one streaming pass over its records.

Memory stays bounded whatever the run's size: counters of small keys, a hashed set of
2-grams, a fixed-size heavy-hitter table for repeated phrases, a 16-number MinHash
signature per caption for near-duplicates, and the few records the gallery shows
(a seeded reservoir sample and the lowest-scored ones).

What a caption "mentions" is decided by the caption plan (``stages/fusion/plan.py``),
rebuilt from the record's cues, and the verifier's ``stated_facts``: a source is counted
when the caption states that source's fact, instruments and genres when it states the
music's instrument or genre fact, and a modality is "used" when the caption states a
fact that came from that modality's experts. Emotions have no fact in the plan; they are
counted by the words of ``EMOTION_WORDS`` in the caption.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from fusionaudio.schema import Cue
from fusionaudio.stages.fusion.plan import CaptionPlan, build_plan
from fusionaudio.stages.fusion.verify import stated_facts

EMOTION_WORDS = frozenset(
    """happy joyful cheerful sad melancholic melancholy calm peaceful relaxed relaxing tense
    angry aggressive excited exciting energetic upbeat gloomy dark eerie spooky scary
    frightened fearful anxious playful romantic dramatic triumphant nostalgic soothing
    somber mournful hopeful uplifting lively""".split()
)
MODALITIES = ("speech", "music", "sound events", "vision")
LENGTH_BIN = 5  # words per histogram bin
SIGNATURE = 16  # MinHash values per caption
BANDS = 4  # LSH bands of SIGNATURE // BANDS values each
NEAR_DUPLICATE = 0.75  # estimated Jaccard of word 2-gram shingles
PHRASE_TABLE = 4000  # heavy-hitter slots for repeated 3-word phrases
_RNG = np.random.default_rng(20251)
# h_i(x) = a_i * x + b_i modulo 2**64 (uint64 wrap-around), a_i odd: a family of hash
# permutations cheap enough for millions of captions.
_A = _RNG.integers(0, 2**63, SIGNATURE, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _RNG.integers(0, 2**63, SIGNATURE, dtype=np.uint64)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _h(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def minhash(words: list[str]) -> np.ndarray:
    """The caption's MinHash signature over its word 2-grams: (SIGNATURE,) uint64."""
    shingles = {" ".join(words[i : i + 2]) for i in range(max(1, len(words) - 1))}
    hashed = np.array([_h(s) for s in shingles], dtype=np.uint64)
    with np.errstate(over="ignore"):
        values = hashed[:, None] * _A[None, :] + _B[None, :]
    signature: np.ndarray = values.min(axis=0)
    return signature


def _kind(message: str) -> str:
    """A warning's or error's kind: its text up to the first colon, numbers blanked."""
    head = message.split(":", 1)[0].strip()
    return re.sub(r"\d+(\.\d+)?", "N", head)[:80] or "(empty)"


@dataclass
class GalleryItem:
    clip_id: str
    score: float | None
    record: dict[str, Any]


@dataclass
class RunStats:
    gallery_size: int = 12
    seed: int = 0
    records: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, Counter[str]] = field(
        default_factory=lambda: {s: Counter() for s in ("error", "filtered", "uncertain")}
    )
    warnings: Counter[str] = field(default_factory=Counter)
    lengths: Counter[int] = field(default_factory=Counter)
    per_caption: dict[str, Counter[int]] = field(
        default_factory=lambda: {
            k: Counter() for k in ("sources", "instruments", "genres", "emotions")
        }
    )
    modalities: Counter[str] = field(default_factory=Counter)
    realized_by: Counter[str] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)
    unigrams: Counter[str] = field(default_factory=Counter)
    bigrams: set[int] = field(default_factory=set)
    total_unigrams: int = 0
    total_bigrams: int = 0
    phrases: dict[str, int] = field(default_factory=dict)
    captions: int = 0
    signatures: list[np.ndarray] = field(default_factory=list)
    caption_ids: list[str] = field(default_factory=list)
    _reservoir: list[GalleryItem] = field(default_factory=list)
    _lowest: list[tuple[float, int, GalleryItem]] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        status = str(record.get("status"))
        self.statuses[status] += 1
        if status == "error":
            self.reasons["error"][_kind(str(record.get("error") or ""))] += 1
        for warning in record.get("warnings") or []:
            self.warnings[_kind(str(warning))] += 1
            for state in ("filtered", "uncertain"):
                if status == state and str(warning).startswith(f"{state}:"):
                    self.reasons[state][_kind(str(warning).split(":", 1)[1])] += 1
        score = (record.get("scores") or {}).get("clap")
        if isinstance(score, int | float):
            self.scores.append(float(score))
        caption = record.get("caption")
        if caption and caption.get("text"):
            self._caption(record, str(caption["text"]), caption)
            self._gallery(record, score if isinstance(score, int | float) else None)

    def _caption(self, record: dict[str, Any], text: str, caption: dict[str, Any]) -> None:
        self.captions += 1
        words = _words(text)
        self.lengths[len(words) // LENGTH_BIN * LENGTH_BIN] += 1
        self.realized_by[str((caption.get("provenance") or {}).get("realized_by") or "llm")] += 1
        self.unigrams.update(words)
        self.total_unigrams += len(words)
        pairs = [f"{a} {b}" for a, b in pairwise(words)]
        self.bigrams.update(_h(p) for p in pairs)
        self.total_bigrams += len(pairs)
        for i in range(len(words) - 2):
            self._phrase(" ".join(words[i : i + 3]))
        self.signatures.append(minhash(words))
        self.caption_ids.append(str(record["clip_id"]))
        self.per_caption["emotions"][sum(w in EMOTION_WORDS for w in set(words))] += 1
        plan = _plan(record)
        stated = set(stated_facts(text, plan)) if plan is not None else set()
        sources = [f for f in stated if f.startswith("source:")]
        self.per_caption["sources"][len(sources)] += 1
        music = plan.music if plan is not None else None
        instruments = len(music.instruments) if music and "music.instruments" in stated else 0
        self.per_caption["instruments"][instruments] += 1
        self.per_caption["genres"][int(bool(music and "music.genre" in stated))] += 1
        used = set()
        if any(f.startswith("voice") for f in stated):
            used.add("speech")
        if any(f.startswith("music") for f in stated):
            used.add("music")
        if any(f.startswith(("source:", "count:", "order")) for f in stated):
            used.add("sound events")
        if plan is not None and any(
            s.via_video and f"source:{s.label}" in stated for s in plan.sources
        ):
            used.add("vision")
        for modality in used or {"none"}:
            self.modalities[modality] += 1

    def _phrase(self, phrase: str) -> None:
        """Misra-Gries heavy hitters: every phrase said more than n/k times is kept."""
        if phrase in self.phrases:
            self.phrases[phrase] += 1
        elif len(self.phrases) < PHRASE_TABLE:
            self.phrases[phrase] = 1
        else:
            for key in list(self.phrases):
                self.phrases[key] -= 1
                if self.phrases[key] == 0:
                    del self.phrases[key]

    def _gallery(self, record: dict[str, Any], score: float | None) -> None:
        item = GalleryItem(str(record["clip_id"]), score, record)
        if len(self._reservoir) < self.gallery_size:
            self._reservoir.append(item)
        else:
            j = self._rng.randrange(self.captions)
            if j < self.gallery_size:
                self._reservoir[j] = item
        if score is not None:
            entry = (-score, self.captions, item)
            if len(self._lowest) < self.gallery_size:
                heapq.heappush(self._lowest, entry)
            elif -score > self._lowest[0][0]:
                heapq.heapreplace(self._lowest, entry)

    def near_duplicates(self, limit: int = 50) -> list[dict[str, Any]]:
        """Caption pairs of different clips whose 2-gram sets are (nearly) the same."""
        if not self.signatures:
            return []
        matrix = np.stack(self.signatures)
        rows = SIGNATURE // BANDS
        buckets: dict[tuple[int, bytes], list[int]] = {}
        for i, sig in enumerate(matrix):
            for band in range(BANDS):
                key = (band, sig[band * rows : (band + 1) * rows].tobytes())
                buckets.setdefault(key, []).append(i)
        pairs: dict[tuple[int, int], float] = {}
        for members in buckets.values():
            for x in range(len(members)):
                for y in range(x + 1, min(len(members), x + 50)):  # cap a hot bucket
                    a, b = members[x], members[y]
                    if (a, b) in pairs:
                        continue
                    similarity = float(np.mean(matrix[a] == matrix[b]))
                    if similarity >= NEAR_DUPLICATE:
                        pairs[(a, b)] = similarity
        ranked = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return [
            {"a": self.caption_ids[a], "b": self.caption_ids[b], "similarity": round(s, 3)}
            for (a, b), s in ranked
        ]

    def gallery(self) -> tuple[list[GalleryItem], list[GalleryItem]]:
        lowest = [item for _, _, item in sorted(self._lowest, key=lambda e: (-e[0], e[1]))]
        return list(self._reservoir), lowest

    def summary(self) -> dict[str, Any]:
        """Every figure of the report as plain JSON."""
        near = self.near_duplicates()
        return {
            "records": self.records,
            "statuses": dict(self.statuses),
            "reasons": {k: dict(v.most_common()) for k, v in self.reasons.items()},
            "warnings": dict(self.warnings.most_common()),
            "captions": self.captions,
            "caption_length_words": {
                f"{k}-{k + LENGTH_BIN - 1}": v for k, v in sorted(self.lengths.items())
            },
            "mentions_per_caption": {
                k: {str(n): c for n, c in sorted(v.items())} for k, v in self.per_caption.items()
            },
            "modality_usage": {m: self.modalities.get(m, 0) for m in (*MODALITIES, "none")},
            "realized_by": dict(self.realized_by),
            "scores": _score_summary(self.scores),
            "diversity": {
                "distinct_1": round(len(self.unigrams) / max(1, self.total_unigrams), 4),
                "distinct_2": round(len(self.bigrams) / max(1, self.total_bigrams), 4),
                "most_repeated_phrases": [
                    {"phrase": p, "count_at_least": c}
                    for p, c in sorted(self.phrases.items(), key=lambda kv: (-kv[1], kv[0]))[:15]
                    if c > 1
                ],
                "near_duplicate_pairs": near,
                "counting": "distinct n-grams / all n-grams over every caption; near "
                f"duplicates: MinHash estimate of 2-gram Jaccard >= {NEAR_DUPLICATE}",
            },
            "counting": {
                "sources": "source facts of the caption plan that the caption states",
                "instruments": "the plan's instruments when the caption states them",
                "genres": "1 when the caption states the plan's genre",
                "emotions": "distinct emotion words (EMOTION_WORDS) in the caption",
                "modality": "speech: a voice fact; music: a music fact; sound events: a "
                "source, count or order fact; vision: a source named through the video",
            },
        }


def _score_summary(scores: list[float]) -> dict[str, Any]:
    if not scores:
        return {"count": 0}
    values = np.asarray(scores)
    return {
        "count": len(scores),
        "mean": round(float(values.mean()), 4),
        "quantiles": {
            str(q): round(float(np.quantile(values, q)), 4) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
        },
    }


def _plan(record: dict[str, Any]) -> CaptionPlan | None:
    cues_data = record.get("cues") or {}
    media = record.get("media") or {}
    try:
        cues = {name: Cue.from_dict(c) for name, c in cues_data.items()}
        duration = float(media.get("window_end_s") or 0.0) - float(
            media.get("window_start_s") or 0.0
        )
        return build_plan(cues, duration, silent=bool(media.get("silent")))
    except (KeyError, TypeError, ValueError):
        return None
