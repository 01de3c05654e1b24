"""Retrieval and zero-shot evaluation of any audio-text scorer, the same way for all:
a checkpoint of either family, any transformers CLAP folder, or the offline proxy
(``pseudo_clap``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fusionaudio.clap.checkpoint import load_checkpoint
from fusionaudio.clap.model import DualEncoder
from fusionaudio.media.errors import MediaError, short_reason
from fusionaudio.training.features import FeatureStore, clip_signal
from fusionaudio.training.loss import positives
from fusionaudio.training.pairs import AudioTexts
from fusionaudio.training.retrieval_metrics import two_way, zero_shot

Progress = Callable[[int], None]


class Embedder(Protocol):
    name: str

    def embed_audio(
        self, items: list[AudioTexts], progress: Progress | None = None
    ) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
        """(embeddings of the readable clips, their indexes in ``items``, (clip, why) failures)."""
        ...

    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class ModelEmbedder:
    def __init__(
        self,
        model: DualEncoder,
        cache_dir: Path | None = None,
        batch_size: int = 32,
        store: FeatureStore | None = None,
        text_memo: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """``store`` and ``text_memo`` let training reuse its features and frozen-text outputs."""
        self.model = model
        self.name = model.family
        self.store = store or FeatureStore(model, cache_dir)
        self.batch_size = batch_size
        self.text_memo = text_memo

    def embed_audio(
        self, items: list[AudioTexts], progress: Progress | None = None
    ) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
        features, kept, failed = [], [], []
        for index, item in enumerate(items):
            try:
                features.append(self.store.get(item))
                kept.append(index)
            except (MediaError, OSError) as exc:
                failed.append((str(item.path), short_reason(exc)))
            if progress is not None:
                progress(1)
        vectors = []
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            for start in range(0, len(features), self.batch_size):
                batch = self.model.collate_audio(features[start : start + self.batch_size])
                vectors.append(self.model.embed_audio(batch).float().cpu().numpy())
        self.model.train(was_training)
        width = vectors[0].shape[1] if vectors else 0
        return (np.concatenate(vectors) if vectors else np.zeros((0, width))), kept, failed

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        vectors = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                inputs = self.model.text_inputs(
                    texts[start : start + self.batch_size], self.text_memo
                )
                vectors.append(self.model.embed_text(inputs).float().cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(vectors)


class PseudoClapEmbedder:
    """The offline proxy scorer: a clip is the posterior-weighted mean of its YAMNet class
    names' sentence embeddings (``backends/pseudo_clap.py``), from the same float YAMNet."""

    name = "pseudo_clap"

    def __init__(self) -> None:
        from fusionaudio.backends.model_files import default_cache_root
        from fusionaudio.backends.pseudo_clap import PseudoClap
        from fusionaudio.backends.yamnet_onnx import YamnetOnnx

        self.proxy = PseudoClap()
        self.proxy.setup()
        self.width = len(self.embed_texts(["x"])[0])
        self.yamnet = YamnetOnnx(default_cache_root() / "models")
        self.yamnet.setup()

    def embed_audio(
        self, items: list[AudioTexts], progress: Progress | None = None
    ) -> tuple[np.ndarray, list[int], list[tuple[str, str]]]:
        vectors, kept, failed = [], [], []
        for index, item in enumerate(items):
            try:
                scores = self.yamnet.patch_scores(clip_signal(item, 16_000)).mean(axis=0)
            except (MediaError, OSError) as exc:
                failed.append((str(item.path), short_reason(exc)))
            else:
                posteriors = dict(zip(self.yamnet.labels, map(float, scores), strict=True))
                vector = self.proxy.audio_vector(posteriors)
                vectors.append(np.zeros(self.width, np.float32) if vector is None else vector)
                kept.append(index)
            if progress is not None:
                progress(1)
        return (np.stack(vectors) if vectors else np.zeros((0, self.width))), kept, failed

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.proxy.embed_texts(texts)


def load_embedder(spec: str, device: str = "cpu", cache_dir: Path | None = None) -> Embedder:
    """``pseudo_clap`` or a checkpoint folder (either family, or a transformers CLAP folder)."""
    if spec == "pseudo_clap":
        return PseudoClapEmbedder()
    return ModelEmbedder(load_checkpoint(Path(spec), device=device), cache_dir)


def retrieval(
    embedder: Embedder, items: list[AudioTexts], progress: Progress | None = None
) -> dict[str, Any]:
    """R@1/5/10 and mAP@10 both ways; a distinct text is relevant to every clip it describes."""
    audio, kept, failed = embedder.embed_audio(items, progress)
    clips = [items[i] for i in kept]
    texts, mask = positives([item.texts for item in clips])
    if len(clips) < 2 or not texts:
        raise ValueError(f"need at least two readable clips with captions; read {len(clips)}")
    positive = mask.numpy().T  # (texts, clips)
    result: dict[str, Any] = dict(two_way(audio, embedder.embed_texts(texts), positive))
    result.update(clips=len(clips), texts=len(texts), unreadable=len(failed), failures=failed)
    return result


def classification(
    embedder: Embedder,
    items: list[AudioTexts],
    classes: dict[str, str],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Zero-shot top-1/top-5 from class prompts; clips of unknown classes are reported."""
    names = list(classes)
    known = [item for item in items if item.label in classes]
    unknown = sorted({str(item.label) for item in items if item.label not in classes})
    audio, kept, failed = embedder.embed_audio(known, progress)
    if not kept:
        raise ValueError("no readable clip of a known class")
    truth = np.array([names.index(str(known[i].label)) for i in kept])
    prompts = embedder.embed_texts([classes[name] for name in names])
    scores = zero_shot(audio @ prompts.T, truth)
    confusion = scores.pop("confusion")
    assert isinstance(confusion, np.ndarray)
    pairs = [
        {"class": names[t], "predicted": names[p], "count": int(confusion[t, p])}
        for t, p in zip(*np.nonzero(confusion), strict=True)
    ]
    return {
        **scores,
        "clips": len(kept),
        "classes": len(names),
        "unreadable": len(failed),
        "unknown_classes": unknown,
        "confusion": pairs,
        "failures": failed,
    }
