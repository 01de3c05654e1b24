"""Tempo and key from DSP (librosa): no weights, so nothing to ship or download."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version

# Krumhansl-Kessler key profiles.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


class LibrosaMusicDsp:
    name = "librosa"
    model_id = "librosa beat_track + Krumhansl-Kessler key profiles"

    def __init__(self) -> None:
        self.revision = f"librosa=={package_version('librosa')}"

    def warm_up(self) -> None:
        """librosa compiles its beat tracker (numba) on first use: pay that at setup."""
        noise = np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 0.1
        self.tempo(noise, 16_000)
        self.key(noise, 16_000)

    def tempo(self, signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
        import librosa

        onset_env = librosa.onset.onset_strength(y=signal, sr=sample_rate, hop_length=256)
        tempo, beats = librosa.beat.beat_track(
            onset_envelope=onset_env, sr=sample_rate, hop_length=256
        )
        bpm = float(np.atleast_1d(tempo)[0])
        pulse = (
            float(np.mean(onset_env[beats])) / (float(np.mean(onset_env)) + 1e-9)
            if len(beats)
            else 0.0
        )
        return {"tempo_bpm": round(bpm, 1), "beats": len(beats), "beat_strength": round(pulse, 2)}

    def key(self, signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
        import librosa

        chroma = librosa.feature.chroma_cqt(y=signal, sr=sample_rate, hop_length=512).mean(axis=1)
        scores = []
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            for tonic in range(12):
                corr = float(np.corrcoef(np.roll(profile, tonic), chroma)[0, 1])
                scores.append((corr, _NAMES[tonic], mode))
        scores.sort(reverse=True)
        best, second = scores[0], scores[1]
        return {
            "key": best[1],
            "mode": best[2],
            "key_confidence": round(best[0], 3),
            "key_margin": round(best[0] - second[0], 3),
        }
