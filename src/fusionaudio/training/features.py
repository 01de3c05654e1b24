"""Each clip's model input, decoded through the pipeline's media code and, for families
whose features are a pure function of the audio, cached on disk by content."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import default_cache_root
from fusionaudio.clap.model import AudioFeatures, DualEncoder
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.hashing import hash_file
from fusionaudio.store.atomic import atomic_write_bytes
from fusionaudio.training.pairs import AudioTexts


def clip_signal(item: AudioTexts, sample_rate: int, timeout_s: float = 60.0) -> np.ndarray:
    """The clip's window, mono at ``sample_rate``; raises MediaError/OSError when unreadable."""
    decoded = decode_audio(item.path, Window(item.start_s, item.end_s), timeout_s=timeout_s)
    samples: np.ndarray = decoded.audio.mono().resample(sample_rate).samples[0]
    return samples


class FeatureStore:
    """``get`` computes a clip's features once; deterministic ones persist across runs."""

    def __init__(self, model: DualEncoder, cache_dir: Path | None = None) -> None:
        self.model = model
        tag = hashlib.sha256(model.feature_fingerprint().encode()).hexdigest()[:12]
        root = cache_dir or default_cache_root() / "clap_features"
        self.folder = root / f"{model.family}-{tag}" if model.deterministic_features else None

    def _path(self, item: AudioTexts) -> Path | None:
        if self.folder is None:
            return None
        content = hash_file(item.path)
        key = hashlib.sha256(f"{content}:{item.start_s:.3f}:{item.end_s}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key[:32]}.npz"

    def get(self, item: AudioTexts) -> AudioFeatures:
        path = self._path(item)
        if path is not None and path.is_file():
            with np.load(path) as stored:
                return {name: stored[name].astype(np.float32) for name in stored.files}
        features = self.model.audio_features(clip_signal(item, self.model.sample_rate))
        if path is not None:
            buffer = io.BytesIO()
            # float16 halves the cache; the model computes in float32 either way
            halves: dict[str, Any] = {k: v.astype(np.float16) for k, v in features.items()}
            np.savez(buffer, **halves)
            atomic_write_bytes(path, buffer.getvalue())
            features = {k: v.astype(np.float16).astype(np.float32) for k, v in features.items()}
        return features
