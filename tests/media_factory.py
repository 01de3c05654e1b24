"""Writes real media files for tests, through PyAV (FFmpeg) and libsndfile only."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import soundfile as sf

from fusionaudio.media.decode import Window, decode_audio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example_audio(name: str, sample_rate: int = 16_000) -> np.ndarray:
    """An example clip as mono float32 at ``sample_rate``."""
    decoded = decode_audio(EXAMPLES / name, Window(0.0, None), timeout_s=30)
    return decoded.audio.mono().resample(sample_rate).samples[0]


def write_audio(
    path: Path, samples: np.ndarray, sample_rate: int, codec: str | None = None
) -> Path:
    """Encode (channels, n) float32 audio; the container follows the file suffix."""
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if path.suffix.lower() in {".wav", ".flac"} and codec is None:
        sf.write(str(path), samples.T, sample_rate)
        return path
    channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(
            codec or _default_codec(path), rate=sample_rate, layout=layout
        )
        _encode_audio(container, stream, samples, sample_rate, layout)
    return path


def _encode_audio(
    container: Any, stream: Any, samples: np.ndarray, sample_rate: int, layout: str
) -> None:
    """Feed (channels, n) float32 samples to ``stream`` in 1024-sample frames, then flush."""
    pts = 0
    for start in range(0, samples.shape[1], 1024):
        chunk = np.ascontiguousarray(samples[:, start : start + 1024])
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = pts
        frame.time_base = Fraction(1, sample_rate)
        pts += chunk.shape[1]
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _default_codec(path: Path) -> str:
    return {
        ".mp3": "libmp3lame",
        ".ogg": "flac",
        ".opus": "libopus",
        ".m4a": "aac",
        ".mkv": "flac",
        ".webm": "libopus",
        ".mov": "aac",
        ".mp4": "aac",
    }[path.suffix.lower()]


def write_video(
    path: Path,
    frames: list[np.ndarray],
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
) -> Path:
    """Encode RGB frames (and optional mono audio) into an mp4 (mpeg4 video, aac audio)."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream("mpeg4", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        astream = None
        if audio is not None:
            astream = container.add_stream("aac", rate=sample_rate, layout="mono")
        for frame_rgb in frames:
            frame = av.VideoFrame.from_ndarray(frame_rgb, format="rgb24")
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode(None):
            container.mux(packet)
        if astream is not None and audio is not None:
            mono = np.asarray(audio, dtype=np.float32)[None, :]
            _encode_audio(container, astream, mono, sample_rate, "mono")
    return path


def colour_frames(count: int, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """Frames whose red channel encodes the frame index, so tests can tell them apart."""
    frames = []
    for i in range(count):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[..., 0] = min(255, i * 12)
        frame[..., 1] = 80
        frames.append(frame)
    return frames
