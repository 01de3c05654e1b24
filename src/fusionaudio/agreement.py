"""Agreement between human raters of captions, and several raters' files made into one set
of labels for calibration.

The paper's two scores: detail (1-3) and hallucination (1-5, where 1-2 is a notable
hallucination). Krippendorff's alpha (ordinal, via the ``krippendorff`` package) measures
agreement on each score, allowing missing ratings; Cohen's kappa (two raters) and Fleiss'
kappa (any number, on the clips every rater rated) measure it on the binary label.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HALLUCINATION_AT_MOST = 2  # a hallucination score of 1-2 is a notable hallucination


@dataclass(frozen=True)
class Rating:
    clip_id: str
    rater: str
    detail: float | None
    score: float | None


def read_rating_file(path: Path) -> list[Rating]:
    """A rating page's CSV (``clip_id,rater,detail,score,comment``); the rater defaults to
    the file name when the column is missing or empty."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    out = []
    for number, row in enumerate(rows, 1):
        clip_id = (row.get("clip_id") or "").strip()
        if not clip_id:
            raise ValueError(f"{path}: row {number} has no clip_id")
        where = f"{path}: row {number}"
        rater = (row.get("rater") or "").strip() or path.stem
        detail = _in_range(row.get("detail"), 1, 3, f"{where}: detail")
        score = _in_range(row.get("score"), 1, 5, f"{where}: score")
        out.append(Rating(clip_id, rater, detail, score))
    return out


def _in_range(text: str | None, low: int, high: int, what: str) -> float | None:
    if text is None or not text.strip():
        return None
    value = float(text)
    if not low <= value <= high:
        raise ValueError(f"{what} {value:g} is not in {low}-{high}")
    return value


def _matrix(ratings: list[Rating], field: str) -> tuple[list[str], list[str], np.ndarray]:
    raters = sorted({r.rater for r in ratings})
    clips = sorted({r.clip_id for r in ratings})
    grid = np.full((len(raters), len(clips)), np.nan)
    for r in ratings:
        value = getattr(r, field)
        if value is not None:
            grid[raters.index(r.rater), clips.index(r.clip_id)] = value
    return raters, clips, grid


def krippendorff_alpha(grid: np.ndarray) -> float | None:
    """Ordinal alpha of a raters x items matrix (NaN = not rated); None if undefined."""
    import krippendorff

    usable = grid[:, np.sum(~np.isnan(grid), axis=0) >= 2]
    if usable.shape[1] < 2 or len(np.unique(usable[~np.isnan(usable)])) < 2:
        return None
    return float(krippendorff.alpha(reliability_data=usable, level_of_measurement="ordinal"))


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    return None if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(labels: np.ndarray) -> float | None:
    """Items x raters boolean matrix, every rater rating every item."""
    items, raters = labels.shape
    if items == 0 or raters < 2:
        return None
    yes = labels.sum(axis=1)
    counts = np.stack([raters - yes, yes], axis=1)
    p_item = (np.sum(counts * counts, axis=1) - raters) / (raters * (raters - 1))
    p_class = counts.sum(axis=0) / (items * raters)
    expected = float(np.sum(p_class**2))
    if expected == 1:
        return None
    return float((p_item.mean() - expected) / (1 - expected))


@dataclass(frozen=True)
class Agreement:
    raters: list[str]
    clips: int
    clips_all_rated: int
    alpha_hallucination: float | None
    alpha_detail: float | None
    cohen_kappa: float | None
    fleiss_kappa: float | None


def agreement(ratings: list[Rating]) -> Agreement:
    raters, clips, scores = _matrix(ratings, "score")
    _, _, details = _matrix(ratings, "detail")
    complete = ~np.isnan(scores).any(axis=0)
    labels = (scores[:, complete] <= HALLUCINATION_AT_MOST).T  # items x raters
    cohen = None
    if len(raters) == 2:
        both = ~np.isnan(scores).any(axis=0)
        a = list(scores[0, both] <= HALLUCINATION_AT_MOST)
        b = list(scores[1, both] <= HALLUCINATION_AT_MOST)
        cohen = cohen_kappa(a, b)
    return Agreement(
        raters=raters,
        clips=len(clips),
        clips_all_rated=int(complete.sum()),
        alpha_hallucination=krippendorff_alpha(scores),
        alpha_detail=krippendorff_alpha(details),
        cohen_kappa=cohen,
        fleiss_kappa=fleiss_kappa(labels) if len(raters) >= 2 else None,
    )


def combine(ratings: list[Rating], how: str = "mean") -> dict[str, bool]:
    """clip_id -> notable hallucination, over every rater who scored the clip.

    ``mean``: the mean hallucination score is at most 2. ``majority``: at least half of the
    raters gave 1-2 (a tie counts as a hallucination: the filter should rather look twice).
    """
    if how not in ("mean", "majority"):
        raise ValueError(f"unknown way to combine raters {how!r}; use mean or majority")
    by_clip: dict[str, list[float]] = {}
    for r in ratings:
        if r.score is not None:
            by_clip.setdefault(r.clip_id, []).append(r.score)
    if how == "mean":
        return {c: float(np.mean(v)) <= HALLUCINATION_AT_MOST for c, v in by_clip.items()}
    return {c: 2 * sum(s <= HALLUCINATION_AT_MOST for s in v) >= len(v) for c, v in by_clip.items()}
