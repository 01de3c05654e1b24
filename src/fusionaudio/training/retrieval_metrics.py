"""Retrieval and zero-shot metrics from a similarity matrix (numpy only).

A query may have several relevant items (a clip has several reference captions; a caption
text shared by several clips is relevant to each of them). Recall@k counts a query as
found when any relevant item is in its top k. Average precision at 10 is
``sum over relevant items ranked r_i <= 10 of (i / r_i)`` divided by
``min(number relevant, 10)``, i being the item's position among the relevant ones: with
one relevant item it is the reciprocal rank cut at 10 (the DCASE / WavCaps convention).
"""

from __future__ import annotations

import numpy as np

RECALL_AT = (1, 5, 10)


def ranking_metrics(similarity: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """``similarity`` and ``relevant`` are (queries, items); each query needs one relevant."""
    if similarity.shape != relevant.shape:
        raise ValueError("similarity and relevant differ in shape")
    if not relevant.any(axis=1).all():
        raise ValueError("every query needs at least one relevant item")
    order = np.argsort(-similarity, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, order, axis=1)  # hits[q, r] = item at rank r+1 relevant
    results: dict[str, float] = {}
    for k in RECALL_AT:
        results[f"R@{k}"] = float(hits[:, :k].any(axis=1).mean())
    precisions = []
    for row in hits:
        ranks = np.flatnonzero(row) + 1
        top = ranks[ranks <= 10]
        ap = float(np.sum(np.arange(1, len(top) + 1) / top)) / min(len(ranks), 10)
        precisions.append(ap)
    results["mAP@10"] = float(np.mean(precisions))
    return results


def two_way(
    audio: np.ndarray, text: np.ndarray, positive: np.ndarray
) -> dict[str, dict[str, float]]:
    """``audio`` (N, D) and ``text`` (T, D) embeddings (normalised); ``positive`` (T, N)."""
    similarity = text @ audio.T
    return {
        "text_to_audio": ranking_metrics(similarity, positive),
        "audio_to_text": ranking_metrics(similarity.T, positive.T),
    }


def zero_shot(similarity: np.ndarray, truth: np.ndarray) -> dict[str, object]:
    """``similarity`` (clips, classes), ``truth`` the class index per clip."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    top1 = order[:, 0]
    classes = similarity.shape[1]
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (truth, top1), 1)
    top5 = (order[:, : min(5, classes)] == truth[:, None]).any(axis=1)
    return {
        "top1": float((top1 == truth).mean()),
        "top5": float(top5.mean()),
        "confusion": confusion,
    }
