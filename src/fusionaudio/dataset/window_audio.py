"""The audio a record describes: its analysed window of the source file, as FLAC bytes.

Exports carry the window, not the whole file: a segmented clip's caption describes
seconds 30-40, and training on the whole file would pair that caption with the wrong
sound.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from fusionaudio.media.decode import Window, decode_audio


@dataclass(frozen=True)
class WindowAudio:
    flac: bytes
    sample_rate: int
    channels: int
    start_s: float
    end_s: float


def record_window(record: dict[str, Any]) -> tuple[float, float]:
    media = record.get("media") or {}
    start = float(media.get("window_start_s") or 0.0)
    end = media.get("window_end_s")
    if end is None:
        end = start + float(record.get("duration_s") or 0.0)
    return start, float(end)


def window_flac(
    record: dict[str, Any], sample_rate: int | None = None, timeout_s: float = 60.0
) -> WindowAudio:
    """Decode the record's window from its source and encode it as 16-bit FLAC.

    ``sample_rate`` resamples (training code often wants one rate); None keeps the
    source's. Raises MediaError/OSError when the source is gone or unreadable.
    """
    start, end = record_window(record)
    decoded = decode_audio(Path(record["source"]), Window(start, end), timeout_s=timeout_s)
    audio = decoded.audio.resample(sample_rate) if sample_rate else decoded.audio
    samples = np.clip(np.asarray(audio.samples, dtype=np.float32), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, samples.T, audio.sample_rate, format="FLAC", subtype="PCM_16")
    return WindowAudio(
        flac=buffer.getvalue(),
        sample_rate=audio.sample_rate,
        channels=samples.shape[0],
        start_s=start,
        end_s=end,
    )
