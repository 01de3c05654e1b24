"""Audio decoding with an honest fallback: libsndfile first where it applies, then FFmpeg.

Every decoder reads only the requested window and checks a deadline between blocks,
so a huge or pathological file costs bounded time and memory. When every decoder
fails, one error lists what each of them said.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import soundfile as sf

from fusionaudio.media.audio import AudioView
from fusionaudio.media.deadline import Deadline
from fusionaudio.media.errors import DecodeTimeout, MediaError, short_reason
from fusionaudio.media.probe import SOUNDFILE_SUFFIXES

_SF_BLOCK_FRAMES = 1 << 16


@dataclass(frozen=True)
class Window:
    """The part of a file to analyse, in seconds; ``end_s=None`` means to the end."""

    start_s: float
    end_s: float | None


@dataclass(frozen=True)
class DecodedAudio:
    audio: AudioView
    decoder: str
    reached_end: bool
    """False when the file holds audio beyond the window (the window truncated it)."""


class AudioDecoder(Protocol):
    name: str

    def is_applicable(self, path: Path) -> bool: ...

    def decode(self, path: Path, window: Window, deadline: Deadline) -> DecodedAudio: ...


class NoAudioStream(MediaError):
    """The container is readable but holds no audio stream."""


class SoundfileDecoder:
    """libsndfile: fast, exact seeking, for WAV and FLAC."""

    name = "soundfile"

    def is_applicable(self, path: Path) -> bool:
        return path.suffix.lower() in SOUNDFILE_SUFFIXES

    def decode(self, path: Path, window: Window, deadline: Deadline) -> DecodedAudio:
        with sf.SoundFile(str(path)) as f:
            rate = int(f.samplerate)
            start = round(window.start_s * rate)
            total = int(f.frames)
            stop = total if window.end_s is None else min(total, round(window.end_s * rate))
            if start > 0:
                f.seek(min(start, total))
            blocks: list[np.ndarray] = []
            remaining = max(0, stop - start)
            while remaining > 0:
                deadline.check()
                block = f.read(min(_SF_BLOCK_FRAMES, remaining), dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                blocks.append(block)
                remaining -= block.shape[0]
            channels = int(f.channels)
        data = np.concatenate(blocks) if blocks else np.zeros((0, channels), np.float32)
        samples = np.ascontiguousarray(data.T)
        return DecodedAudio(AudioView(samples, rate), self.name, reached_end=stop >= total)


class PyAVDecoder:
    """FFmpeg through PyAV: every container and codec FFmpeg knows."""

    name = "pyav"

    def is_applicable(self, path: Path) -> bool:
        return True

    def decode(self, path: Path, window: Window, deadline: Deadline) -> DecodedAudio:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise NoAudioStream("the file has no audio stream")
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise MediaError(
                    f"FFmpeg has no decoder for this audio codec ({stream.codec_tag!r})"
                )
            rate = int(stream.codec_context.sample_rate or 0)
            if rate <= 0:
                raise MediaError("audio stream has no sample rate")
            if window.start_s > 0 and stream.time_base is not None:
                container.seek(int(window.start_s / stream.time_base), stream=stream, backward=True)
            # Planar float keeps the channel count and gives (channels, samples) arrays.
            resampler = av.AudioResampler(format="fltp", rate=rate)
            chunks: list[np.ndarray] = []
            start_sample = round(window.start_s * rate)
            end_sample = None if window.end_s is None else round(window.end_s * rate)
            position: int | None = None
            reached_end = True
            for packet in container.demux(stream):
                deadline.check()
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a damaged packet in a truncated or corrupt file: skip it
                for frame in frames:
                    if position is None:
                        position = round(float(frame.time) * rate) if frame.time is not None else 0
                    for out in resampler.resample(frame):
                        chunk = out.to_ndarray().astype(np.float32, copy=False)
                        chunk_start = position
                        position += chunk.shape[1]
                        lo = max(0, start_sample - chunk_start)
                        hi = chunk.shape[1]
                        if end_sample is not None:
                            hi = min(hi, end_sample - chunk_start)
                        if hi > lo:
                            chunks.append(chunk[:, lo:hi])
                if end_sample is not None and position is not None and position >= end_sample:
                    reached_end = False
                    break
        if not chunks:
            raise MediaError("no audio samples could be decoded")
        samples = np.ascontiguousarray(np.concatenate(chunks, axis=1))
        return DecodedAudio(AudioView(samples, rate), self.name, reached_end=reached_end)


DEFAULT_DECODERS: tuple[AudioDecoder, ...] = (SoundfileDecoder(), PyAVDecoder())


def decode_audio(
    path: Path,
    window: Window,
    timeout_s: float,
    decoders: tuple[AudioDecoder, ...] = DEFAULT_DECODERS,
) -> DecodedAudio:
    """Decode ``window`` of ``path``; raise MediaError naming every decoder's failure."""
    deadline = Deadline(timeout_s)
    failures: list[str] = []
    for decoder in decoders:
        if not decoder.is_applicable(path):
            continue
        try:
            decoded = decoder.decode(path, window, deadline)
        except (DecodeTimeout, NoAudioStream):
            raise
        except Exception as exc:
            failures.append(f"{decoder.name}: {short_reason(exc)}")
            continue
        if decoded.audio.samples.shape[1] == 0:
            failures.append(f"{decoder.name}: no audio samples in the window")
            continue
        return decoded
    raise MediaError("could not decode audio (" + "; ".join(failures) + ")")
