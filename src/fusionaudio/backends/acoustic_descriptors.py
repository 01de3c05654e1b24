"""Acoustic descriptors a person would use to describe a sound: loudness over time,
onset density, brightness, stationarity, silence. Plain DSP (numpy), no model."""

from __future__ import annotations

from typing import Any

import numpy as np

FRAME = 1024
HOP = 512


def _frames(signal: np.ndarray) -> np.ndarray:
    if len(signal) < FRAME:
        signal = np.pad(signal, (0, FRAME - len(signal)))
    count = 1 + (len(signal) - FRAME) // HOP
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    frames: np.ndarray = signal[idx]
    return frames


def describe_signal(signal: np.ndarray, sample_rate: int, block_s: float = 0.5) -> dict[str, Any]:
    """Descriptors of a mono signal; every number has a unit in its name."""
    signal = np.asarray(signal, dtype=np.float32)
    frames = _frames(signal)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    window = np.hanning(FRAME)
    spectrum = np.abs(np.fft.rfft(frames * window, axis=1))
    freqs = np.fft.rfftfreq(FRAME, 1.0 / sample_rate)
    power = spectrum.sum(axis=1)
    centroid = np.where(power > 1e-9, (spectrum * freqs).sum(axis=1) / np.maximum(power, 1e-9), 0.0)
    flux = (
        np.sqrt(np.sum(np.diff(spectrum, axis=0).clip(min=0) ** 2, axis=1))
        if len(spectrum) > 1
        else np.zeros(1)
    )
    # Onsets: spectral-flux peaks above a moving median + offset.
    onsets = 0
    if len(flux) > 3:
        threshold = np.median(flux) + 1.5 * np.std(flux)
        peaks = (flux[1:-1] > flux[:-2]) & (flux[1:-1] >= flux[2:]) & (flux[1:-1] > threshold)
        onsets = int(np.sum(peaks))
    duration = len(signal) / sample_rate
    frame_s = HOP / sample_rate
    per_block = max(1, round(block_s / frame_s))
    blocks = [
        {
            "start_s": round(i * frame_s, 2),
            "rms_dbfs": round(float(np.mean(db[i : i + per_block])), 1),
        }
        for i in range(0, len(db), per_block)
    ]
    active = db > -50.0
    voiced_centroid = centroid[active] if np.any(active) else centroid
    loud = db[active] if np.any(active) else db
    return {
        "duration_s": round(duration, 3),
        "loudness_dbfs": {
            "mean": round(float(np.mean(loud)), 1),
            "max": round(float(np.max(db)), 1),
            "range_db": round(float(np.percentile(loud, 95) - np.percentile(loud, 5)), 1),
        },
        "loudness_over_time": blocks,
        "silence_fraction": round(float(np.mean(~active)), 3),
        "onset_rate_hz": round(onsets / duration, 2) if duration > 0 else 0.0,
        "brightness_hz": round(float(np.mean(voiced_centroid)), 0),
        "stationarity": round(
            float(1.0 / (1.0 + np.std(np.diff(db[active])) if np.sum(active) > 2 else 1.0)), 3
        ),
    }


def words_for(descriptors: dict[str, Any]) -> list[str]:
    """Plain-language reading of the descriptors, for the derived description."""
    words = []
    loud = descriptors["loudness_dbfs"]
    if descriptors["silence_fraction"] > 0.9:
        return ["near silence"]
    if loud["mean"] > -15:
        words.append("loud")
    elif loud["mean"] < -40:
        words.append("quiet")
    words.append("steady level" if loud["range_db"] < 10 else "strongly varying level")
    brightness = descriptors["brightness_hz"]
    words.append(
        "dark, low-pitched timbre"
        if brightness < 800
        else "bright timbre"
        if brightness > 3000
        else "mid-range timbre"
    )
    rate = descriptors["onset_rate_hz"]
    if rate > 4:
        words.append("many sharp onsets")
    elif rate < 0.5:
        words.append("few distinct onsets")
    if 0.2 < descriptors["silence_fraction"] <= 0.9:
        words.append("with pauses")
    return words
