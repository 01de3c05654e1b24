"""Choosing a CLAP threshold from human ratings, as the paper did (F-beta, beta 1.05).

A rating marks a notable hallucination (the positive class) when its 1-5 score is at
most 2, or when a binary label says so. The filter predicts "hallucination" for clips
scoring below the threshold; the chosen threshold maximises F-beta over every cut
between observed scores.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Operating:
    threshold: float
    precision: float
    recall: float
    f_beta: float
    agreement: float
    filter_rate: float


@dataclass(frozen=True)
class Calibration:
    best: Operating
    curve: list[Operating]
    rated: int
    positives: int
    beta: float


def read_ratings(path: Path) -> dict[str, bool]:
    """clip_id -> True for a notable hallucination. CSV or JSONL, with ``score`` (1-5) or
    ``label`` (1/0, true/false, hallucination/ok)."""
    rows: list[dict[str, object]]
    if path.suffix.lower() == ".jsonl":
        rows = [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    else:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    ratings: dict[str, bool] = {}
    for number, row in enumerate(rows, 1):
        clip_id = str(row.get("clip_id", "")).strip()
        if not clip_id:
            raise ValueError(f"{path}: row {number} has no clip_id")
        score, label = row.get("score"), row.get("label")
        if score not in (None, ""):
            value = float(str(score))
            if not 1 <= value <= 5:
                raise ValueError(f"{path}: row {number}: score {value} is not in 1-5")
            ratings[clip_id] = value <= 2
        elif label not in (None, ""):
            text = str(label).strip().lower()
            if text not in {"1", "0", "true", "false", "hallucination", "ok"}:
                raise ValueError(
                    f"{path}: row {number}: label {label!r} is not 1/0, true/false, hallucination/ok"
                )
            ratings[clip_id] = text in {"1", "true", "hallucination"}
        else:
            raise ValueError(f"{path}: row {number} has neither score nor label")
    return ratings


def operating_point(
    scores: list[float], positive: list[bool], threshold: float, beta: float
) -> Operating:
    flagged = [s < threshold for s in scores]
    tp = sum(f and p for f, p in zip(flagged, positive, strict=True))
    fp = sum(f and not p for f, p in zip(flagged, positive, strict=True))
    fn = sum(p and not f for f, p in zip(flagged, positive, strict=True))
    tn = len(scores) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    b2 = beta * beta
    f_beta = (
        (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0
    )
    return Operating(
        threshold=threshold,
        precision=precision,
        recall=recall,
        f_beta=f_beta,
        agreement=(tp + tn) / len(scores),
        filter_rate=sum(flagged) / len(scores),
    )


def calibrate(
    scores: dict[str, float], ratings: dict[str, bool], beta: float = 1.05
) -> Calibration:
    ids = sorted(set(scores) & set(ratings))
    if not ids:
        raise ValueError("no rated clip has a score")
    values = [scores[i] for i in ids]
    positive = [ratings[i] for i in ids]
    cuts = sorted(set(values))
    candidates = (
        [cuts[0] - 1e-6] + [(a + b) / 2 for a, b in itertools.pairwise(cuts)] + [cuts[-1] + 1e-6]
    )
    curve = [operating_point(values, positive, t, beta) for t in candidates]
    best = max(curve, key=lambda op: (op.f_beta, -op.filter_rate))
    return Calibration(best=best, curve=curve, rated=len(ids), positives=sum(positive), beta=beta)


def plot_precision_recall(calibration: Calibration, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    ax.plot(
        [op.recall for op in calibration.curve],
        [op.precision for op in calibration.curve],
        marker=".",
    )
    best = calibration.best
    ax.scatter(
        [best.recall],
        [best.precision],
        color="red",
        zorder=3,
        label=f"threshold {best.threshold:.4f}",
    )
    ax.set_xlabel("recall (hallucinations caught)")
    ax.set_ylabel("precision")
    ax.set_title(f"CLAP filter: F{calibration.beta:g} = {best.f_beta:.3f}")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
