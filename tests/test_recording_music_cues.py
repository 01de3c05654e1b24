"""The recording cue (audio_description) and the richer music cue, on real recordings.

Real audio from ``../shared/data/sounds`` and ``examples/``; synthetic signals only where a
known ground truth is the point (a clipped sine, a click track of known tempo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionaudio.backends.recording_dsp import describe_recording
from fusionaudio.media.audio import AudioView
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.schema import Clip, Cue
from fusionaudio.stages.base import AUDIO_16K_MONO, AUDIO_44K_STEREO, StageInput
from fusionaudio.stages.experts.audio_description import (
    AudioDescriptionConfig,
    AudioDescriptionStage,
)
from fusionaudio.stages.experts.music import (
    INSTRUMENT_FAMILY,
    MusicConfig,
    MusicStage,
    vocals_evidence,
)
from fusionaudio.stages.experts.tagging import TaggingStage
from tests.media_factory import EXAMPLES
from tests.real_sounds import SOUNDS, labelled_clips

pytestmark = pytest.mark.skipif(
    not (SOUNDS / "labels.jsonl").exists(), reason="the real sound set is not beside the repo"
)

# Instrument classes of the real set -> the families a first-ranked instrument may be in.
PLAUSIBLE_FAMILIES = {
    "guitar": {"plucked strings"},
    "keyboard_instrument": {"keyboard"},
    "bowed_strings": {"bowed strings", "ensemble"},
    "brass": {"brass"},
    "woodwind": {"woodwind"},
    "drums": {"percussion"},
    "hand_percussion": {"percussion"},
    "electronic_music": {"electronic", "percussion", "keyboard"},
}


def decode(path: Path) -> AudioView:
    return decode_audio(path, Window(0.0, None), timeout_s=30).audio


def item(audio: AudioView, cues: dict[str, Cue] | None = None) -> StageInput:
    views = {
        AUDIO_16K_MONO: audio.mono().resample(16_000),
        AUDIO_44K_STEREO: audio.channel_layout(2).resample(44_100),
    }
    return StageInput(Clip("c", "/c"), views, cues or {})


def recording(audio: AudioView) -> dict[str, object]:
    view = audio.channel_layout(2).resample(44_100)
    return describe_recording(view.samples, view.sample_rate)


@pytest.fixture(scope="module")
def music_stage() -> MusicStage:
    stage = MusicStage(MusicConfig())
    stage.setup()
    return stage


# --- recording ---------------------------------------------------------------------------


def test_telephone_prompts_are_narrow_band_and_a_32k_clip_is_full() -> None:
    clips = labelled_clips()
    phone = [c for c in clips if c.path.name.startswith("asterisk_")]
    assert len(phone) >= 3
    for clip in phone:
        cue = recording(decode(clip.path))
        assert cue["band"] in {"telephone", "band-limited"}, (clip.path.name, cue)
        assert cue["bandwidth_hz"] is not None and float(cue["bandwidth_hz"]) <= 4200.0  # type: ignore[arg-type]
    full = [c for c in clips if c.raw["sample_rate"] == 32_000 and c.label == "glass_breaking"]
    cue = recording(decode(full[0].path))
    assert cue["band"] == "full" and float(cue["bandwidth_hz"]) >= 10_000, cue  # type: ignore[arg-type]


def test_band_follows_the_source_rate_across_the_real_set() -> None:
    """Every 8/11 kHz source is narrow band; most >= 32 kHz sources are full band (some
    are quiet low sounds or were made at a low rate and upsampled)."""
    low, high = [], []
    for clip in labelled_clips():
        rate = int(clip.raw["sample_rate"])  # type: ignore[call-overload]
        if rate <= 11_025:
            low.append(recording(decode(clip.path))["band"])
        elif rate >= 32_000:
            high.append(recording(decode(clip.path))["band"])
    assert low and all(band != "full" for band in low), low
    assert sum(band == "full" for band in high) >= 0.8 * len(high), high


def test_clipping_is_found_on_a_clipped_signal_only() -> None:
    rate = 44_100
    t = np.arange(2 * rate) / rate
    tone = (0.6 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 331 * t)).astype(
        np.float32
    )
    clean = describe_recording(tone[None, :] * 1.05, rate)
    clipped = describe_recording(np.clip(tone * 2.5, -1.0, 1.0)[None, :], rate)
    assert clean["clipping"] is False and clean["clipped_fraction"] == 0.0
    assert clipped["clipping"] is True and float(clipped["clipped_fraction"]) > 0.1


def test_clipping_survives_resampling_of_a_real_clip() -> None:
    """A real 32 kHz recording driven into clipping, then resampled to the 44.1 kHz view."""
    clip = next(c for c in labelled_clips() if c.path.name == "csound_viola.flac")
    audio = decode(clip.path)
    loud = AudioView(
        np.clip(audio.samples * (4.0 / np.max(np.abs(audio.samples))), -1, 1), audio.sample_rate
    )
    assert recording(loud)["clipping"] is True
    assert recording(audio)["clipping"] is False


def test_mono_and_stereo_sources() -> None:
    mono = next(c for c in labelled_clips() if c.raw["channels"] == 1)
    assert recording(decode(mono.path))["stereo"] == "mono"
    wide = next(c for c in labelled_clips() if c.path.name == "csound_seashore.flac")
    cue = recording(decode(wide.path))
    assert cue["stereo"] in {"narrow", "wide"} and float(cue["stereo_width"]) > 0.001  # type: ignore[arg-type]


def test_noise_floor_and_snr_follow_added_noise() -> None:
    clip = next(c for c in labelled_clips() if c.path.name == "scratch_cough_male.flac")
    audio = decode(clip.path)
    noisy = AudioView(
        audio.samples
        + 0.05 * np.random.default_rng(1).standard_normal(audio.samples.shape).astype(np.float32),
        audio.sample_rate,
    )
    quiet, loud = recording(audio), recording(noisy)
    assert float(loud["noise_floor_dbfs"]) > float(quiet["noise_floor_dbfs"]) + 6  # type: ignore[arg-type]
    assert float(loud["snr_db"]) < float(quiet["snr_db"])  # type: ignore[arg-type]


def test_reverb_decay_grows_with_a_longer_tail() -> None:
    """Dry clicks, then the same clicks through a synthetic exponential room of 1.5 s."""
    rate = 44_100
    rng = np.random.default_rng(2)
    dry = np.zeros(6 * rate, np.float32)
    for k in range(5):
        start = int((0.2 + 1.2 * k) * rate)
        dry[start : start + 400] = rng.standard_normal(400) * np.exp(-np.arange(400) / 60)
    t = np.arange(int(1.5 * rate)) / rate
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / 1.5)  # -60 dB at 1.5 s
    wet = np.convolve(dry, tail)[: len(dry)].astype(np.float32)
    wet *= 0.5 / np.max(np.abs(wet))
    a = describe_recording(dry[None, :] * 0.5, rate)
    b = describe_recording(wet[None, :], rate)
    assert a["reverb"] == "dry", a
    assert b["reverb"] in {"room", "large hall"} and float(b["decay_s"]) > 0.5, b


def test_dynamics_of_a_fade() -> None:
    clip = next(c for c in labelled_clips() if c.path.name == "flare_rain.flac")
    audio = decode(clip.path)
    ramp = np.linspace(0.01, 1.0, audio.samples.shape[1], dtype=np.float32)
    assert recording(AudioView(audio.samples * ramp, audio.sample_rate))["dynamics"] == "rising"
    assert recording(audio)["dynamics"] == "steady"


def test_stage_adds_the_recording_key(tagger: TaggingStage) -> None:
    stage = AudioDescriptionStage(AudioDescriptionConfig())
    stage.setup()
    assert AUDIO_44K_STEREO in stage.needs
    audio = decode(next(c for c in labelled_clips() if c.path.name.startswith("asterisk_")).path)
    one = item(audio)
    (cue,) = stage([StageInput(one.clip, one.views, {"tagging": tagger([one])[0]})])
    rec = cue.output["recording"]
    assert rec["band"] in {"telephone", "band-limited"} and rec["stereo"] == "mono"
    assert {"text", "events", "descriptors"} <= set(cue.output)


# --- music ------------------------------------------------------------------------------


def click_track(bpm: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    out = np.zeros(int(seconds * rate), np.float32)
    click = np.sin(2 * np.pi * 1500 * np.arange(400) / rate) * np.exp(-np.arange(400) / 80)
    for k in range(int(seconds * bpm / 60)):
        start = int(k * 60 / bpm * rate)
        out[start : start + 400] += click[: len(out) - start].astype(np.float32)
    return out


def _music(stage: MusicStage, tagger: TaggingStage, audio: AudioView) -> dict[str, object]:
    one = item(audio)
    tags = tagger([StageInput(one.clip, {AUDIO_16K_MONO: one.views[AUDIO_16K_MONO]}, {})])[0]
    (cue,) = stage([StageInput(one.clip, one.views, {"tagging": tags})])
    return dict(cue.output)


def test_tempo_of_real_music_matches_a_click_track(music_stage: MusicStage) -> None:
    """The tracker music's tempo, checked against a click track at that tempo (which the
    tracker must find within 4 %), and the click track against its true tempo."""
    assert music_stage._dsp is not None
    music = decode(EXAMPLES / "music_pingus.ogg").mono().resample(16_000).samples[0]
    found = music_stage._dsp.tempo(music, 16_000)
    assert found["tempo_confidence"] >= 0.5, found
    for bpm in (90.0, 120.0, float(found["tempo_bpm"])):
        clicks = music_stage._dsp.tempo(click_track(bpm, 12.0), 16_000)
        ratio = clicks["tempo_bpm"] / bpm
        assert any(abs(ratio - r) <= 0.04 * r for r in (0.5, 1.0, 2.0)), (bpm, clicks)
        assert clicks["tempo_confidence"] >= 0.5


def test_no_confident_tempo_in_noise(music_stage: MusicStage) -> None:
    assert music_stage._dsp is not None
    noise = np.random.default_rng(5).standard_normal(16_000 * 8).astype(np.float32) * 0.1
    assert music_stage._dsp.tempo(noise, 16_000)["tempo_confidence"] < 0.5


def test_key_confidence_is_higher_for_a_chord_than_for_noise(music_stage: MusicStage) -> None:
    assert music_stage._dsp is not None
    t = np.arange(16_000 * 4) / 16_000
    chord = np.sin(2 * np.pi * np.array([261.63, 329.63, 392.0])[:, None] * t).sum(axis=0)
    noise = np.random.default_rng(6).standard_normal(len(t)).astype(np.float32)
    c = music_stage._dsp.key(chord * 0.2, 16_000)
    n = music_stage._dsp.key(noise * 0.1, 16_000)
    assert c["key"] == "C" and c["key_confidence"] > n["key_confidence"], (c, n)


def test_sections_split_two_different_pieces(music_stage: MusicStage) -> None:
    assert music_stage._dsp is not None
    clips = {c.path.name: c for c in labelled_clips()}
    a = decode(clips["csound_classical_guitar.flac"].path).mono().resample(16_000).samples[0]
    b = decode(clips["scratch_techno2.flac"].path).mono().resample(16_000).samples[0]
    joined = np.concatenate([a[: 16_000 * 8], b[: 16_000 * 8]])
    sections = music_stage._dsp.sections(joined, 16_000)
    assert len(sections) >= 2, sections
    assert any(abs(s["start_s"] - 8.0) <= 1.0 for s in sections[1:]), sections
    assert len(music_stage._dsp.sections(a[: 16_000 * 5], 16_000)) == 1


def test_instrument_clips_rank_a_plausible_family_first(
    music_stage: MusicStage, tagger: TaggingStage
) -> None:
    hits, total, report = 0, 0, []
    for clip in labelled_clips():
        if clip.label not in PLAUSIBLE_FAMILIES:
            continue
        total += 1
        out = _music(music_stage, tagger, decode(clip.path))
        instruments = out.get("instruments") or []
        first = instruments[0] if instruments else None  # type: ignore[index]
        family = INSTRUMENT_FAMILY.get(first["label"]) if first else None
        ok = family in PLAUSIBLE_FAMILIES[clip.label]
        hits += ok
        report.append((clip.path.name, first and first["label"], ok))
        if first:
            assert {"label", "score", "evidence"} <= set(first)
    print(f"plausible family first: {hits}/{total}", report)
    assert total >= 15 and hits >= 0.6 * total, report


def test_music_cue_fields_on_tracker_music(music_stage: MusicStage, tagger: TaggingStage) -> None:
    out = _music(music_stage, tagger, decode(EXAMPLES / "music_pingus.ogg"))
    assert out["gate"]["open"]  # type: ignore[index]
    assert out["tempo_bpm"] is not None and 0 <= float(out["tempo_confidence"]) <= 1  # type: ignore[arg-type]
    assert 0 <= float(out["key_confidence"]) <= 1  # type: ignore[arg-type]
    assert out["vocals"] is False and float(out["vocals_confidence"]) < 0.5  # type: ignore[arg-type]
    sections = out["sections"]
    assert sections and sections[0]["start_s"] == 0.0  # type: ignore[index]
    assert all(c["label"] != "Musical instrument" for c in out["instruments"])  # type: ignore[attr-defined]


def test_choir_has_vocals_and_tracker_music_none(
    music_stage: MusicStage, tagger: TaggingStage
) -> None:
    """The choir (whose music gate stays shut: YAMNet hears it as Chant) and the tracker
    music, through the vocals rule on their real tags."""
    assert music_stage._classes is not None
    singing = music_stage._classes.singing
    found = {}
    choir = next(c for c in labelled_clips() if c.label == "singing").path
    for path in (choir, EXAMPLES / "music_pingus.ogg"):
        one = item(decode(path))
        tags = tagger([StageInput(one.clip, {AUDIO_16K_MONO: one.views[AUDIO_16K_MONO]}, {})])
        out = tags[0].output
        found[path.name] = vocals_evidence(out["posteriors"], out["timeline"], singing, None)
    assert found[choir.name]["vocals"] is True, found
    assert found["music_pingus.ogg"]["vocals"] is False, found
    with_stem = vocals_evidence({}, [], singing, 0.4)
    assert (
        with_stem["vocals_confidence"] > vocals_evidence({}, [], singing, 0.02)["vocals_confidence"]
    )
