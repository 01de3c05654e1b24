"""Symmetric InfoNCE with several positives per clip (CLAP, CLIP).

The batch's distinct texts are the candidates; a text is a positive of every clip in the
batch that was given it (so "the sound of a dog barking" on two dog clips is not pushed
away from either). Each direction maximises the probability mass on the positives:
``-log(sum_pos exp(s) / sum_all exp(s))``; with one positive each, this is the usual
cross-entropy of CLIP.
"""

from __future__ import annotations

import torch


def positives(texts_per_clip: list[tuple[str, ...]]) -> tuple[list[str], torch.Tensor]:
    """(distinct texts, a (clips, texts) bool matrix of which text belongs to which clip)."""
    texts = list(dict.fromkeys(t for clip in texts_per_clip for t in clip))
    index = {t: i for i, t in enumerate(texts)}
    mask = torch.zeros(len(texts_per_clip), len(texts), dtype=torch.bool)
    for row, clip in enumerate(texts_per_clip):
        for t in clip:
            mask[row, index[t]] = True
    return texts, mask


def _multi_positive(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    positive = torch.logsumexp(logits.masked_fill(~mask, float("-inf")), dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def contrastive_loss(
    audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """``audio`` (B, D), ``text`` (T, D), normalised; ``scale`` = exp(logit_scale)."""
    logits = scale * audio @ text.T
    mask = mask.to(logits.device)
    return 0.5 * (_multi_positive(logits, mask) + _multi_positive(logits.T, mask.T))
