"""Decoded audio and the derived views stages ask for (mono, resampled)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

SILENCE_DBFS = -120.0


@dataclass(frozen=True)
class AudioView:
    """Audio samples shaped (channels, samples), float32 in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return float(self.samples.shape[1]) / float(self.sample_rate)

    def mono(self) -> AudioView:
        if self.channels == 1:
            return self
        return AudioView(
            self.samples.mean(axis=0, keepdims=True, dtype=np.float32), self.sample_rate
        )

    def resample(self, sample_rate: int) -> AudioView:
        if sample_rate == self.sample_rate:
            return self
        # soxr wants (samples, channels).
        out = soxr.resample(self.samples.T, self.sample_rate, sample_rate, quality="HQ")
        out = np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1, self.channels).T)
        return AudioView(out, sample_rate)

    def channel_layout(self, channels: int) -> AudioView:
        """Mono for 1, duplicated or first-two channels for 2: what separation models expect."""
        if channels == 1:
            return self.mono()
        if channels == 2:
            if self.channels == 1:
                return AudioView(np.repeat(self.samples, 2, axis=0), self.sample_rate)
            return AudioView(np.ascontiguousarray(self.samples[:2]), self.sample_rate)
        raise ValueError(f"unsupported channel layout {channels}")


@dataclass(frozen=True)
class Loudness:
    rms_dbfs: float
    peak_dbfs: float

    @property
    def silent(self) -> bool:
        """Digital silence or practically so (below -70 dBFS RMS)."""
        return self.peak_dbfs <= SILENCE_DBFS or self.rms_dbfs < -70.0


def _dbfs(value: float) -> float:
    if value <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * float(np.log10(value)))


def loudness(view: AudioView) -> Loudness:
    samples = view.samples
    if samples.size == 0:
        return Loudness(SILENCE_DBFS, SILENCE_DBFS)
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    return Loudness(_dbfs(rms), _dbfs(peak))
