from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionaudio.media.audio import AudioView, loudness
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.errors import MediaError
from fusionaudio.media.frames import frame_times, sample_frames
from fusionaudio.media.probe import probe
from tests.media_factory import colour_frames, write_audio, write_video


@pytest.mark.parametrize(
    ("name", "decoder", "has_video"),
    [
        ("speech_fox.wav", "soundfile", False),
        ("music_pingus.ogg", "pyav", False),
        ("engine_start.mp3", "pyav", False),
        ("video_cat.mp4", "pyav", True),
    ],
)
def test_examples_decode_with_the_right_decoder(
    examples_dir: Path, name: str, decoder: str, has_video: bool
) -> None:
    info = probe(examples_dir / name)
    decoded = decode_audio(examples_dir / name, Window(0.0, None), timeout_s=30)
    assert decoded.decoder == decoder
    assert info.has_video is has_video
    assert info.duration_s is not None
    # Decoded length agrees with the container's duration (within codec padding).
    assert decoded.audio.duration_s == pytest.approx(info.duration_s, abs=0.2) or has_video
    assert np.max(np.abs(decoded.audio.samples)) > 0.05


@pytest.mark.parametrize(
    "suffix", [".flac", ".opus", ".m4a", ".mkv", ".webm", ".mov", ".ogg", ".mp3"]
)
def test_every_accepted_container_round_trips(
    tmp_path: Path, speech_16k: np.ndarray, suffix: str
) -> None:
    rate = 48_000 if suffix in {".opus", ".webm"} else 16_000
    signal = AudioView(speech_16k[None, :], 16_000).resample(rate).samples
    path = write_audio(tmp_path / f"clip{suffix}", signal, rate)
    decoded = decode_audio(path, Window(0.0, None), timeout_s=30)
    back = decoded.audio.mono().resample(16_000).samples[0]
    n = min(len(back), len(speech_16k))
    assert abs(len(back) - len(speech_16k)) < 0.1 * 16_000
    # Lossy codecs add delay; compare energy envelopes in 100 ms blocks.
    env = lambda x: np.sqrt(np.mean(x[: n // 1600 * 1600].reshape(-1, 1600) ** 2, axis=1))  # noqa: E731
    assert np.corrcoef(env(back[:n]), env(speech_16k[:n]))[0, 1] > 0.9


def test_window_reads_exactly_the_requested_span(examples_dir: Path) -> None:
    for name in ("speech_fox.wav", "music_pingus.ogg"):
        whole = decode_audio(examples_dir / name, Window(0.0, None), 30).audio
        part = decode_audio(examples_dir / name, Window(2.0, 5.0), 30)
        assert part.audio.duration_s == pytest.approx(3.0, abs=0.01)
        assert part.reached_end is False
        rate = whole.sample_rate
        if name.endswith(".wav"):
            np.testing.assert_allclose(
                part.audio.samples, whole.samples[:, 2 * rate : 5 * rate], atol=1e-6
            )


def test_six_channels_at_96k_downmix_and_resample(tmp_path: Path) -> None:
    t = np.arange(96_000) / 96_000
    six = np.stack([0.2 * np.sin(2 * np.pi * 440 * t)] * 6).astype(np.float32)
    path = write_audio(tmp_path / "six.flac", six, 96_000)
    audio = decode_audio(path, Window(0.0, None), 30).audio
    assert (audio.channels, audio.sample_rate) == (6, 96_000)
    mono16 = audio.mono().resample(16_000)
    assert mono16.samples.shape == (1, 16_000)
    spectrum = np.abs(np.fft.rfft(mono16.samples[0]))
    assert np.argmax(spectrum) == pytest.approx(440, abs=2)  # 1 Hz bins for a 1 s signal


def test_undecodable_file_lists_every_decoder(tmp_path: Path) -> None:
    bad = tmp_path / "fake.wav"
    bad.write_text("hello")
    with pytest.raises(MediaError) as info:
        decode_audio(bad, Window(0.0, None), 30)
    assert "soundfile:" in str(info.value) and "pyav:" in str(info.value)


def test_loudness_reports_digital_silence() -> None:
    assert loudness(AudioView(np.zeros((1, 1600), np.float32), 16_000)).silent
    assert not loudness(AudioView(np.full((1, 1600), 0.1, np.float32), 16_000)).silent


def test_frames_come_from_the_requested_times(tmp_path: Path) -> None:
    path = write_video(tmp_path / "v.mp4", colour_frames(20), fps=10)  # 2 s, red = 12 * index
    times = frame_times(0.0, 2.0, rate_hz=2.0, max_frames=8)
    assert times == [0.25, 0.75, 1.25, 1.75]
    frames = sample_frames(path, times, max_side=64, timeout_s=10)
    assert [round(f.time_s, 2) for f in frames] == [0.3, 0.8, 1.3, 1.8]
    reds = [float(f.rgb[..., 0].mean()) for f in frames]
    assert reds == sorted(reds) and reds[-1] - reds[0] > 50
    assert max(frames[0].rgb.shape[:2]) <= 64
