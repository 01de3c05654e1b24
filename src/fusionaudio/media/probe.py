"""What a media file holds, read from its headers without decoding."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import soundfile as sf

from fusionaudio.media.errors import MediaError, short_reason

SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac"})


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    has_audio: bool
    has_video: bool
    video_fps: float | None = None


def _probe_soundfile(path: Path) -> MediaInfo:
    info = sf.info(str(path))
    duration = info.frames / info.samplerate if info.samplerate else None
    return MediaInfo(
        container=info.format.lower(),
        duration_s=duration,
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        has_audio=True,
        has_video=False,
    )


def _probe_av(path: Path) -> MediaInfo:
    with av.open(str(path), metadata_errors="ignore") as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        video = container.streams.video[0] if container.streams.video else None
        # The audio stream's own length first: a video's container may run longer.
        duration: float | None = None
        if audio is not None and audio.duration is not None and audio.time_base is not None:
            duration = float(audio.duration * audio.time_base)
        elif container.duration is not None:
            duration = float(container.duration) / 1_000_000.0
        fps = None
        if video is not None and video.average_rate is not None:
            fps = float(video.average_rate)
        return MediaInfo(
            container=str(container.format.name),
            duration_s=duration,
            sample_rate=_audio_attr(audio, "sample_rate"),
            channels=_audio_attr(audio, "channels"),
            has_audio=audio is not None,
            has_video=video is not None,
            video_fps=fps,
        )


def _audio_attr(stream: av.audio.stream.AudioStream | None, name: str) -> int | None:
    if stream is None or stream.codec_context is None:
        return None
    return int(getattr(stream.codec_context, name) or 0) or None


def probe(path: Path) -> MediaInfo:
    """Read stream facts, trying libsndfile for WAV/FLAC and FFmpeg (PyAV) for everything."""
    failures: list[str] = []
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        try:
            return _probe_soundfile(path)
        except Exception as exc:  # libsndfile raises its own error types
            failures.append(f"soundfile: {exc}")
    try:
        return _probe_av(path)
    except Exception as exc:
        failures.append(f"pyav: {short_reason(exc)}")
    raise MediaError("not readable as media (" + "; ".join(failures) + ")")
