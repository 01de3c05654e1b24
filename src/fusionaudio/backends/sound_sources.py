"""Which sound sources are really there: a timeline of accepted source segments.

From YAMNet's per-patch sigmoid scores (patches x 521 AudioSet classes) and the signal:

1. roll the 521 labels up into source families (``audioset_families.csv``, AudioSet
   ontology): a family's score in a patch is the max over its member labels;
2. cut each family's score track into segments with hysteresis (open at
   ``OPEN_SCORE``, hold while ``>= HOLD_SCORE``, bridge one-patch gaps);
3. accept a family only when it is confident, persistent and not contradicted by a
   clearly stronger sibling (same parent group) at the same time; a generic ancestor
   (Animal, Vehicle, Music, Bird, ...) yields to an accepted descendant, and families that
   are nobody's ancestor but generic (Sound effect, Silence, Bang, room scenes, ...) yield
   to any accepted source they overlap;
4. for accepted event-like sources (barks, knocks, gunshots), count events in the
   energy envelope inside the source's segments and group them into bursts.

Pure numpy; no model. Every considered family is returned with ``accepted`` and ``why``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

from fusionaudio.backends.audioset_ontology import SourceFamily, source_families

SOURCES_VERSION = 1

# --- segments (hysteresis on the per-patch family score) ---------------------------------
# YAMNet's sigmoid scores are not calibrated probabilities: a class that is really present
# scores 0.5-1.0 in the patches holding it, absent classes sit under 0.1, and confusable
# neighbours (Howl beside Bark, Engine beside Applause) drift to 0.2-0.35. 0.3 opens a
# segment a little under the decision point (logit 0, score 0.5): a sound that the model is
# close to calling. (The shipped w8a8 graph, ``precision: int8``, can only output the
# levels 0.09, 0.18, 0.32, 0.5, 0.68, ...; these thresholds select the same patches there.)
OPEN_SCORE = 0.3
# Once open, a segment holds down to 0.15, so one soft patch inside a sound (a bark's tail,
# a pause in a crow's caw) does not split it; the level of most absent classes ends it.
HOLD_SCORE = 0.15
# Segments separated by at most one patch below HOLD_SCORE (0.48 s of hop) are the same
# source; a single patch is shorter than most pauses between repeated calls.
MAX_GAP_PATCHES = 1

# --- acceptance ---------------------------------------------------------------------------
# Confident: the best patch must reach the sigmoid's decision point (logit 0, score 0.5):
# the model itself calls the class present there. The mean over the segments must stay at
# the "detected" level (OPEN_SCORE) so that a single spike inside a long weak segment does
# not count.
ACCEPT_PEAK = 0.5
ACCEPT_MEAN = OPEN_SCORE
# Persistent: two patches (an event at time t falls into two overlapping 0.96 s patches
# with the 0.48 s hop, so even a single gunshot reaches 2), or most of a clip too short to
# hold two patches (YAMNet yields one patch for clips under ~1.44 s).
MIN_PATCHES = 2
SHORT_CLIP_S = 1.5
SHORT_CLIP_COVERAGE = 0.6
# Siblings (same parent group, e.g. Dog and Wolf in Canidae): a family whose confidence is
# under half the strongest accepted sibling's, over the same time, is the model hedging
# between neighbouring classes, not a second source.
SIBLING_RATIO = 0.5
# "At the same time": at least half of the weaker family's segment time overlaps.
OVERLAP_SHARE = 0.5

# --- repetitions (energy envelope) --------------------------------------------------------
# 20 ms RMS frames every 10 ms: short enough to separate footsteps or knocks (~100 ms).
ENVELOPE_WIN_S = 0.02
ENVELOPE_HOP_S = 0.01
# A new event needs the level to rise 6 dB above the dip before it (and the event ends
# once the level falls 6 dB under its peak): half the amplitude, a clearly audible dip.
DIP_DB = 6.0
# Peaks closer than 80 ms are one event (a bark's or a knock's internal ripple).
MIN_EVENT_SPACING_S = 0.08
# Only the top 30 dB under the segment's loudest frame counts, never below -60 dBFS:
# background noise and reverberation tails make no events.
EVENT_RANGE_DB = 30.0
SILENCE_DBFS = -60.0
# Events separated by more than 0.7 s start a new burst (a dog's "woof-woof ... woof").
BURST_GAP_S = 0.7
# More than 30 distinct events in a clip is a texture (applause, rain, machine gun),
# not a countable repetition: count and bursts are then null.
MAX_COUNT = 30


@dataclass
class _Candidate:
    family: SourceFamily
    patches: list[tuple[int, int]]  # inclusive patch ranges
    spans: list[tuple[float, float]]  # their times in seconds
    peak: float
    confidence: float
    n_patches: int
    coverage: float
    tags: list[str]
    segment_stats: list[dict[str, float]]
    accepted: bool = False
    why: str = ""


@lru_cache(maxsize=1)
def _families() -> tuple[SourceFamily, ...]:
    return tuple(source_families().values())


def hysteresis_segments(
    track: np.ndarray,
    open_score: float = OPEN_SCORE,
    hold_score: float = HOLD_SCORE,
    max_gap: int = MAX_GAP_PATCHES,
) -> list[tuple[int, int]]:
    """Inclusive patch ranges: open at ``>= open_score``, hold while ``>= hold_score``,
    merge ranges separated by at most ``max_gap`` patches."""
    runs: list[tuple[int, int]] = []
    i, n = 0, len(track)
    while i < n:
        if track[i] >= open_score:
            start = i
            # a segment may also reach back over held patches just before it opened
            while start > 0 and track[start - 1] >= hold_score:
                start -= 1
            end = i
            while end + 1 < n and track[end + 1] >= hold_score:
                end += 1
            if runs and start <= runs[-1][1]:
                start = runs[-1][0]
                runs.pop()
            runs.append((start, end))
            i = end + 1
        else:
            i += 1
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and start - merged[-1][1] - 1 <= max_gap:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _overlap(a: Sequence[tuple[float, float]], b: Sequence[tuple[float, float]]) -> float:
    """Share of ``a``'s time that ``b`` also covers."""
    total = sum(e - s for s, e in a)
    if total <= 0:
        return 0.0
    shared = sum(max(0.0, min(e1, e2) - max(s1, s2)) for s1, e1 in a for s2, e2 in b)
    return min(1.0, shared / total)


def _candidate(
    family: SourceFamily,
    scores: np.ndarray,
    index: Mapping[str, int],
    patch_len_s: float,
    patch_hop_s: float,
    duration_s: float,
) -> _Candidate | None:
    present = [m for m in family.members if m in index]
    cols = [index[m] for m in present]
    if not cols:
        return None
    track = scores[:, cols].max(axis=1)
    ranges = hysteresis_segments(track)
    if not ranges:
        return None
    rows = np.concatenate([np.arange(s, e + 1) for s, e in ranges])
    values = track[rows]
    spans = []
    stats = []
    for s, e in ranges:
        start = s * patch_hop_s
        end = min(max(duration_s, start), e * patch_hop_s + patch_len_s)
        spans.append((start, end))
        part = track[s : e + 1]
        stats.append(
            {
                "start_s": round(start, 3),
                "end_s": round(end, 3),
                "peak": round(float(part.max()), 3),
                "mean": round(float(part.mean()), 3),
            }
        )
    member_peaks = scores[rows][:, cols].max(axis=0)
    order = np.argsort(-member_peaks, kind="stable")
    tags = [present[i] for i in order if member_peaks[i] >= HOLD_SCORE]
    covered = sum(e - s for s, e in spans)
    return _Candidate(
        family=family,
        patches=ranges,
        spans=spans,
        peak=float(values.max()),
        confidence=float(values.mean()),
        n_patches=len(rows),
        coverage=min(1.0, covered / duration_s) if duration_s > 0 else 0.0,
        tags=tags,
        segment_stats=stats,
    )


def _first_pass(c: _Candidate, duration_s: float) -> str | None:
    """Why ``c`` fails on its own (confidence, persistence), or None when it passes."""
    if c.peak < ACCEPT_PEAK:
        return f"not confident (peak {c.peak:.2f} < {ACCEPT_PEAK:.2f})"
    if c.confidence < ACCEPT_MEAN:
        return f"not confident (mean {c.confidence:.2f} < {ACCEPT_MEAN:.2f})"
    short_whole = duration_s < SHORT_CLIP_S and c.coverage >= SHORT_CLIP_COVERAGE
    if c.n_patches < MIN_PATCHES and not short_whole:
        return f"not persistent ({c.n_patches} patch, fewer than {MIN_PATCHES})"
    return None


def _persistence(c: _Candidate, duration_s: float) -> str:
    if c.n_patches >= MIN_PATCHES:
        return f"persistent ({c.n_patches} patches)"
    return f"persistent (covers {c.coverage:.0%} of a {duration_s:.1f} s clip)"


def _related(a: SourceFamily, b: SourceFamily) -> bool:
    return a.label in b.ancestors or b.label in a.ancestors


def _decide(candidates: list[_Candidate], duration_s: float) -> None:
    """Set ``accepted`` and ``why`` on every candidate (in place)."""
    passed: list[_Candidate] = []
    for c in candidates:
        reason = _first_pass(c, duration_s)
        if reason is None:
            passed.append(c)
        else:
            c.why = reason
    # sibling check, strongest first: a clearly weaker family of the same group at the
    # same time is the model hedging between neighbours
    kept: list[_Candidate] = []
    for c in sorted(passed, key=lambda x: -x.confidence):
        rival = next(
            (
                k
                for k in kept
                if k.family.group == c.family.group
                and not _related(k.family, c.family)
                and c.confidence < SIBLING_RATIO * k.confidence
                and _overlap(c.spans, k.spans) >= OVERLAP_SHARE
            ),
            None,
        )
        if rival is not None:
            c.why = (
                f"weaker than its sibling {rival.family.label} in {c.family.group} "
                f"(mean {c.confidence:.2f} vs {rival.confidence:.2f}) at the same time"
            )
        else:
            kept.append(c)
    ancestors = {a for c in _families() for a in c.ancestors}
    # ancestors yield to accepted descendants (the ancestor lists are transitively closed);
    # a generic one also yields to any accepted source of its own domain (an accepted Owl
    # rules out "Domestic animals, pets": both descend from Animal)
    final: list[_Candidate] = []
    for c in kept:
        if c.family.label in ancestors:
            generic = c.family.kind in ("generic", "scene")
            domain = set(c.family.ancestors)
            child = next(
                (
                    d
                    for d in kept
                    if c.family.label in d.family.ancestors
                    and (generic or _overlap(c.spans, d.spans) >= OVERLAP_SHARE)
                ),
                None,
            )
            if child is not None:
                c.why = f"{c.family.kind} ancestor of the accepted {child.family.label}"
                continue
            kin = next(
                (
                    d
                    for d in kept
                    if generic
                    and domain
                    and d.family.kind not in ("generic", "scene")
                    and domain & set(d.family.ancestors)
                ),
                None,
            )
            if kin is not None:
                c.why = f"generic: the accepted {kin.family.label} is a more specific source"
                continue
        final.append(c)
    # generic sound qualities and scenes that are nobody's ancestor yield to any
    # overlapping accepted source that is not itself such a quality
    sources = [
        c
        for c in final
        if not (c.family.kind in ("generic", "scene") and c.family.label not in ancestors)
    ]
    for c in final:
        if any(c is s for s in sources):
            c.accepted = True
            continue
        cover = next((s for s in sources if _overlap(c.spans, s.spans) >= OVERLAP_SHARE), None)
        if cover is not None:
            c.why = f"{c.family.kind}: overlaps the accepted source {cover.family.label}"
        else:
            c.accepted = True
    for c in candidates:
        if c.accepted:
            c.why = (
                f"confident (peak {c.peak:.2f}, mean {c.confidence:.2f}) and "
                f"{_persistence(c, duration_s)}"
            )


def energy_envelope_db(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS level in dBFS, ``ENVELOPE_WIN_S`` frames every ``ENVELOPE_HOP_S``."""
    x = np.asarray(signal, dtype=np.float64)
    win = max(1, round(ENVELOPE_WIN_S * sample_rate))
    hop = max(1, round(ENVELOPE_HOP_S * sample_rate))
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    csum = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n) * hop
    power = (csum[starts + win] - csum[starts]) / win
    level: np.ndarray = 10.0 * np.log10(np.maximum(power, 1e-12))
    return level


def count_events(
    level_db: np.ndarray, spans: Sequence[tuple[float, float]]
) -> tuple[int | None, int | None, list[float]]:
    """Distinct events (peaks separated by dips of ``DIP_DB``) inside ``spans`` of an
    envelope from :func:`energy_envelope_db`: (count, bursts, event times in seconds);
    count and bursts are None when no event stands out or there are too many to count."""
    times: list[float] = []
    for start_s, end_s in spans:
        lo = max(0, int(start_s / ENVELOPE_HOP_S))
        hi = min(len(level_db), int(np.ceil(end_s / ENVELOPE_HOP_S)) + 1)
        if hi <= lo:
            continue
        part = level_db[lo:hi]
        floor = max(float(part.max()) - EVENT_RANGE_DB, SILENCE_DBFS)
        # the segment edges count as the floor, so an event at an edge still rises and falls
        values = np.concatenate([[floor], np.maximum(part, floor), [floor]])
        low = values[0]
        high = -np.inf
        at = 0
        rising = False
        for j, v in enumerate(values):
            if not rising:
                low = min(low, v)
                if v >= low + DIP_DB:
                    rising, high, at = True, v, j
            else:
                if v > high:
                    high, at = v, j
                if v <= high - DIP_DB:
                    t = (lo + at - 1) * ENVELOPE_HOP_S + ENVELOPE_WIN_S / 2
                    if not times or t - times[-1] >= MIN_EVENT_SPACING_S:
                        times.append(round(t, 3))
                    rising, low = False, v
    if not times or len(times) > MAX_COUNT:
        return None, None, times
    bursts = 1 + sum(1 for a, b in pairwise(times) if b - a > BURST_GAP_S)
    return len(times), bursts, times


def sound_sources(
    scores: np.ndarray,
    labels: Sequence[str],
    patch_len_s: float,
    patch_hop_s: float,
    duration_s: float,
    signal: np.ndarray,
    sample_rate: int = 16_000,
) -> list[dict[str, Any]]:
    """Every source family with at least one segment, accepted first then by start time."""
    scores = np.asarray(scores, dtype=np.float32)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(f"scores {scores.shape} do not match {len(labels)} labels")
    if scores.shape[0] == 0:
        return []
    index = {label: i for i, label in enumerate(labels)}
    candidates = [
        c
        for family in _families()
        if (c := _candidate(family, scores, index, patch_len_s, patch_hop_s, duration_s))
        is not None
    ]
    _decide(candidates, duration_s)
    level: np.ndarray | None = None
    out = []
    for c in sorted(candidates, key=lambda x: (not x.accepted, x.spans[0][0], -x.confidence)):
        count: int | None = None
        bursts: int | None = None
        events: list[float] = []
        if c.accepted and c.family.event_like:
            if level is None:
                level = energy_envelope_db(signal, sample_rate)
            count, bursts, events = count_events(level, c.spans)
        out.append(
            {
                "label": c.family.label,
                "kind": c.family.kind,
                "group": c.family.group,
                "tags": c.tags,
                "segments": c.segment_stats,
                "confidence": round(c.confidence, 3),
                "peak": round(c.peak, 3),
                "coverage": round(c.coverage, 3),
                "patches": c.n_patches,
                "accepted": c.accepted,
                "why": c.why,
                "event_like": c.family.event_like,
                "count": count,
                "bursts": bursts,
                "event_times_s": events if count is not None else [],
            }
        )
    return out


def accepted_labels(sources: Sequence[Mapping[str, Any]]) -> list[str]:
    """The display labels of the accepted sources, in output order."""
    return [str(s["label"]) for s in sources if s["accepted"]]
