"""Video frames at given timestamps, as RGB arrays, for the vision expert."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from fusionaudio.media.deadline import Deadline
from fusionaudio.media.errors import MediaError


@dataclass(frozen=True)
class VideoFrame:
    time_s: float
    rgb: np.ndarray
    """(height, width, 3) uint8."""


def frame_times(start_s: float, end_s: float, rate_hz: float, max_frames: int) -> list[float]:
    """Evenly spaced timestamps inside [start_s, end_s), at most ``max_frames`` of them."""
    span = max(0.0, end_s - start_s)
    count = max(1, min(max_frames, int(span * rate_hz)))
    step = span / count
    return [round(start_s + step * (i + 0.5), 3) for i in range(count)]


def sample_frames(
    path: Path, times_s: list[float], max_side: int, timeout_s: float
) -> list[VideoFrame]:
    """Decode the first frame at or after each timestamp, scaled so its longer side <= max_side."""
    deadline = Deadline(timeout_s, what="frame decoding")
    frames: list[VideoFrame] = []
    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise MediaError("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for target in sorted(times_s):
            if stream.time_base is not None:
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                deadline.check()
                chosen = frame
                if frame.time is not None and frame.time >= target - 1e-3:
                    break
            if chosen is None:
                continue
            width, height = chosen.width, chosen.height
            scale = min(1.0, max_side / max(width, height))
            out_w = max(2, int(width * scale) // 2 * 2)
            out_h = max(2, int(height * scale) // 2 * 2)
            rgb = chosen.to_ndarray(format="rgb24", width=out_w, height=out_h)
            frames.append(VideoFrame(time_s=float(chosen.time or target), rgb=np.asarray(rgb)))
    return frames
