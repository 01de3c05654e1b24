"""Tempo, key and sections from DSP (librosa): no weights, so nothing to ship or download.

Every number has its unit in its name; every threshold is a named constant with the
reason for its value. See ``docs/cues/recording_music.md``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version

REVISION = 2
"""Bumped whenever an output of this module changes (it keys the music stage's cache)."""

# Krumhansl-Kessler key profiles.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]

TEMPO_HOP = 256
TEMPO_MIN_LAG_S = 0.2
TEMPO_MAX_LAG_S = 2.0
"""Beat periods of 0.2-2 s (30-300 BPM) are where the autocorrelation is compared."""
TEMPO_PROMINENCE_FULL = 0.35
"""Autocorrelation of the onset strength at the beat period, above the median over all
beat-period lags: a drum loop reaches 0.5-0.8, steady tracker music ~0.3-0.5, free-time
bowed or sung notes and noise stay below 0.1. 0.35 above the median maps to confidence 1."""
TEMPO_MIN_BEATS = 4
"""Fewer than four tracked beats is no tempo: confidence 0."""

KEY_MARGIN_FULL = 0.15
"""Correlation margin between the best and the second-best of the 24 Krumhansl-Kessler
key profiles: on clearly tonal music the best key wins by 0.1-0.3, on noise or drums by
< 0.03. 0.15 maps to confidence 1; the correlation itself also scales it (a weak best
match with a clear margin is still a weak key)."""

SECTION_HOP = 2048
"""Section features every 2048 samples (0.128 s at 16 kHz)."""
SECTION_KERNEL_S = 3.0
"""Foote novelty: a checkerboard kernel of 2 x 3 s compares the 3 s before and after each
instant; changes shorter than that (a fill, a single chord) are not sections."""
SECTION_MIN_S = 4.0
"""No section shorter than 4 s; a clip shorter than two kernels has one section."""
SECTION_NOVELTY_MIN = 0.25
"""A boundary needs a novelty peak of at least 0.25 (on the 0-1 scale of the kernel
correlation): a steady loop with the same chords stays below 0.1, a change of
instrumentation, harmony or level reaches 0.3-0.6."""
SECTION_SAME_SIMILARITY = 0.9
"""Sections whose mean features have cosine similarity >= 0.9 get the same letter (A B A)."""


class LibrosaMusicDsp:
    name = "librosa"
    model_id = "librosa beat_track + Krumhansl-Kessler key profiles + Foote novelty"

    def __init__(self) -> None:
        self.revision = f"librosa=={package_version('librosa')};music_dsp=v{REVISION}"

    def warm_up(self) -> None:
        """librosa compiles its beat tracker (numba) on first use: pay that at setup."""
        noise = np.random.default_rng(0).standard_normal(16_000 * 3).astype(np.float32) * 0.1
        self.tempo(noise, 16_000)
        self.key(noise, 16_000)

    def tempo(self, signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
        """Tempo with a confidence from the autocorrelation of the onset strength."""
        import librosa

        onset_env = librosa.onset.onset_strength(y=signal, sr=sample_rate, hop_length=TEMPO_HOP)
        tempo, beats = librosa.beat.beat_track(
            onset_envelope=onset_env, sr=sample_rate, hop_length=TEMPO_HOP
        )
        bpm = float(np.atleast_1d(tempo)[0])
        pulse = (
            float(np.mean(onset_env[beats])) / (float(np.mean(onset_env)) + 1e-9)
            if len(beats)
            else 0.0
        )
        confidence = 0.0
        prominence = 0.0
        frame_s = TEMPO_HOP / sample_rate
        lo, hi = round(TEMPO_MIN_LAG_S / frame_s), round(TEMPO_MAX_LAG_S / frame_s)
        env = onset_env - float(np.mean(onset_env))
        if bpm > 0 and len(beats) >= TEMPO_MIN_BEATS and len(env) > hi and np.any(env):
            ac = librosa.autocorrelate(env, max_size=hi + 1)
            ac = ac / (ac[0] + 1e-12)
            lag = round(60.0 / bpm / frame_s)
            if lo <= lag <= hi:
                near = ac[max(lo, lag - 2) : min(hi, lag + 2) + 1]
                prominence = float(np.max(near) - np.median(ac[lo : hi + 1]))
                confidence = float(np.clip(prominence / TEMPO_PROMINENCE_FULL, 0.0, 1.0))
        return {
            "tempo_bpm": round(bpm, 1),
            "beats": len(beats),
            "beat_strength": round(pulse, 2),
            "tempo_prominence": round(prominence, 3),
            "tempo_confidence": round(confidence, 2),
        }

    def key(self, signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
        import librosa

        chroma = librosa.feature.chroma_cqt(y=signal, sr=sample_rate, hop_length=512).mean(axis=1)
        scores = []
        for mode, profile in (("major", _MAJOR), ("minor", _MINOR)):
            for tonic in range(12):
                corr = float(np.nan_to_num(np.corrcoef(np.roll(profile, tonic), chroma)[0, 1]))
                scores.append((corr, _NAMES[tonic], mode))
        scores.sort(reverse=True)
        best, second = scores[0], scores[1]
        margin = best[0] - second[0]
        confidence = float(np.clip(margin / KEY_MARGIN_FULL, 0.0, 1.0) * np.clip(best[0], 0.0, 1.0))
        return {
            "key": best[1],
            "mode": best[2],
            "key_correlation": round(best[0], 3),
            "key_margin": round(margin, 3),
            "key_confidence": round(confidence, 2),
            "key_runner_up": f"{second[1]} {second[2]}",
        }

    def sections(self, signal: np.ndarray, sample_rate: int) -> list[dict[str, Any]]:
        """Segments where the music changes: Foote novelty on a self-similarity matrix of
        chroma + MFCC + level, peaks above ``SECTION_NOVELTY_MIN``; letters for repeats."""
        import librosa

        duration_s = len(signal) / sample_rate
        frame_s = SECTION_HOP / sample_rate
        half = round(SECTION_KERNEL_S / frame_s)
        whole = [{"start_s": 0.0, "end_s": round(duration_s, 2), "label": "A"}]
        if duration_s < 2 * SECTION_MIN_S or np.max(np.abs(signal)) <= 0:
            return whole
        chroma = librosa.feature.chroma_stft(y=signal, sr=sample_rate, hop_length=SECTION_HOP)
        mfcc = librosa.feature.mfcc(y=signal, sr=sample_rate, hop_length=SECTION_HOP, n_mfcc=13)
        rms = librosa.feature.rms(y=signal, hop_length=SECTION_HOP)
        level = librosa.amplitude_to_db(rms, ref=1.0) / 20.0
        n = min(chroma.shape[1], mfcc.shape[1], rms.shape[1])

        def unit(block: np.ndarray) -> np.ndarray:
            block = block[:, :n] - block[:, :n].mean(axis=1, keepdims=True)
            out: np.ndarray = block / (np.linalg.norm(block, axis=0, keepdims=True) + 1e-9)
            return out

        # Equal weight for harmony, timbre and level (each column block is unit length).
        feats = np.vstack([unit(chroma), unit(mfcc[1:]), level[:, :n]]) / np.sqrt(3.0)
        ssm = np.clip(feats.T @ feats, -1.0, 1.0)
        sign = np.ones((2 * half, 2 * half))
        sign[:half, half:] = -1
        sign[half:, :half] = -1
        taper = np.hanning(2 * half)
        kernel = sign * np.outer(taper, taper)
        kernel /= np.sum(np.abs(kernel))
        padded = np.pad(ssm, half, mode="edge")
        novelty = np.array(
            [float(np.sum(padded[i : i + 2 * half, i : i + 2 * half] * kernel)) for i in range(n)]
        )
        novelty = np.clip(novelty, 0.0, None)
        min_gap = round(SECTION_MIN_S / frame_s)
        bounds = [0]
        order = np.argsort(-novelty)
        chosen: list[int] = []
        for i in order:
            if novelty[i] < SECTION_NOVELTY_MIN:
                break
            if i < min_gap or n - i < min_gap or any(abs(i - c) < min_gap for c in chosen):
                continue
            chosen.append(int(i))
        bounds += [*sorted(chosen), n]
        means = [feats[:, a:b].mean(axis=1) for a, b in itertools.pairwise(bounds)]
        letters: list[str] = []
        for k, mean in enumerate(means):
            label = None
            for j in range(k):
                cos = float(
                    mean @ means[j] / (np.linalg.norm(mean) * np.linalg.norm(means[j]) + 1e-9)
                )
                if cos >= SECTION_SAME_SIMILARITY:
                    label = letters[j]
                    break
            letters.append(label or chr(ord("A") + len(set(letters))))
        return [
            {
                "start_s": round(a * frame_s, 2),
                "end_s": round(min(duration_s, b * frame_s), 2),
                "label": letters[k],
                "novelty": round(float(novelty[a]), 2) if a else None,
            }
            for k, (a, b) in enumerate(itertools.pairwise(bounds))
        ]
