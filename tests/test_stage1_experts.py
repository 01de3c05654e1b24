"""Stage 1 experts of the offline preset, on real audio with known content."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from fusionaudio.media.audio import AudioView
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.frames import frame_times, sample_frames
from fusionaudio.metrics import word_error_rate
from fusionaudio.schema import Clip, Cue, Tag
from fusionaudio.stages.base import (
    ACCOMPANIMENT_16K,
    AUDIO_16K_MONO,
    AUDIO_44K_STEREO,
    VIDEO_FRAMES,
    VOCALS_16K,
    StageInput,
    StageOutput,
)
from fusionaudio.stages.experts.asr import AsrConfig, AsrStage
from fusionaudio.stages.experts.audio_description import (
    AudioDescriptionConfig,
    AudioDescriptionStage,
    event_spans,
)
from fusionaudio.stages.experts.given_tags import GivenTagsStage
from fusionaudio.stages.experts.music import MusicConfig, MusicStage
from fusionaudio.stages.experts.separation import SeparationConfig, SeparationStage
from fusionaudio.stages.experts.tagging import TaggingStage
from fusionaudio.stages.experts.vad import VadConfig, VadStage
from fusionaudio.stages.experts.vision import VisionConfig, VisionStage
from fusionaudio.stages.settings import BuildContext
from tests.media_factory import EXAMPLES, example_audio
from tests.real_sounds import SOUNDS, labelled_clips

SPEECH_TEXT = {
    "speech_fox.wav": "The quick brown fox jumps over the lazy dog. Today we are testing an offline audio captioning pipeline.",
    "video_cat.mp4": "Look at this cat. She is sitting very still and watching the camera.",
}
# Mean WER bounds for the default ASR (Whisper base, AsrConfig's compute type and beam),
# with margin over what every compute type and beam measured (docs/benchmarks.md).
ENGLISH_WER_MAX = 0.15
ALL_WER_MAX = 0.6


def test_word_error_rate_reference() -> None:
    assert word_error_rate("the cat sat", "the cat sat") == 0.0
    assert word_error_rate("the cat sat", "the bat sat down") == pytest.approx(2 / 3)


def _input(signal_16k: np.ndarray, clip_id: str = "c", **extra: object) -> StageInput:
    views = {AUDIO_16K_MONO: AudioView(signal_16k[None, :], 16_000)}
    return StageInput(
        Clip(clip_id, f"/{clip_id}"), {**views, **extra.get("views", {})}, extra.get("cues", {})
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def vad() -> VadStage:
    stage = VadStage(VadConfig())
    stage.setup()
    return stage


def _cues(signal: np.ndarray, vad: VadStage, tagger: TaggingStage) -> dict[str, Cue]:
    item = _input(signal)
    return {"vad": vad([item])[0], "tagging": tagger([item])[0]}


def test_separation_puts_speech_in_vocals_and_music_in_accompaniment() -> None:
    speech = example_audio("speech_fox.wav", 44_100)
    music = example_audio("music_pingus.ogg", 44_100)
    n = min(len(speech), len(music))
    mix = 0.5 * speech[:n] + 0.5 * music[:n]
    stage = SeparationStage(SeparationConfig())
    stage.setup()
    item = StageInput(
        Clip("mix", "/mix"), {AUDIO_44K_STEREO: AudioView(np.stack([mix, mix]), 44_100)}, {}
    )
    (out,) = stage([item])
    assert isinstance(out, StageOutput)
    vocals = out.views[VOCALS_16K].samples[0]  # type: ignore[union-attr]
    rest = out.views[ACCOMPANIMENT_16K].samples[0]  # type: ignore[union-attr]
    speech16 = AudioView(0.5 * speech[None, :n], 44_100).resample(16_000).samples[0]
    music16 = AudioView(0.5 * music[None, :n], 44_100).resample(16_000).samples[0]
    m = min(len(vocals), len(speech16))

    def energy_share(stem: np.ndarray, source: np.ndarray) -> float:
        """Fraction of the stem's energy explained by the source (least-squares projection)."""
        gain = float(np.dot(stem[:m], source[:m]) / np.dot(source[:m], source[:m]))
        return gain**2 * float(np.sum(source[:m] ** 2)) / float(np.sum(stem[:m] ** 2))

    assert energy_share(vocals, speech16) > 0.7
    assert energy_share(rest, music16) > 0.8
    assert energy_share(vocals, music16) < 0.1
    assert energy_share(rest, speech16) < 0.1
    assert 0.1 < out.cue.output["vocals_energy_share"] < 0.9


@pytest.fixture(scope="module")
def asr(tmp_path_factory: pytest.TempPathFactory) -> AsrStage:
    """The offline default's speech recognition: AsrConfig's beam size and compute type."""
    stage = AsrStage(AsrConfig(), BuildContext(tmp_path_factory.mktemp("models")))
    stage.setup()
    return stage


def _folded_wer(reference: str, hypothesis: str) -> float:
    """word_error_rate after folding diacritics: its tokens are ASCII ("Tisíce" is one word)."""

    def fold(text: str) -> str:
        return "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )

    return word_error_rate(fold(reference), fold(hypothesis))


def test_whisper_base_word_error_rate_over_every_known_speech_clip(
    asr: AsrStage, vad: VadStage, tagger: TaggingStage
) -> None:
    """Mean WER over every speech clip with known text (the English examples, then the
    labelled Czech and Dutch clips in ../shared/data/sounds), language auto-detected as
    the default runs. One clip alone sits on a knife-edge: greedy int8 decoding of
    speech_fox.wav gives 0.056 or 0.22 depending on the CPU's instruction set
    (docs/benchmarks.md, ASR section)."""
    clips = [(name, example_audio(name), text, "en") for name, text in SPEECH_TEXT.items()]
    if (SOUNDS / "labels.jsonl").is_file():
        for real in labelled_clips():
            if real.speech_text:
                audio = decode_audio(real.path, Window(0.0, None), timeout_s=30).audio
                signal = audio.mono().resample(16_000).samples[0]
                clips.append((real.path.name, signal, real.speech_text, real.speech_language))
    wers, languages, texts = {}, {}, {}
    for name, signal, text, _ in clips:
        (cue,) = asr([_input(signal, cues=_cues(signal, vad, tagger))])
        out = cue.output
        assert out["transcribed"] and out["segments"], (name, out)
        assert out["segments"][0]["start_s"] < 1.0, (name, out["segments"])
        wers[name], languages[name], texts[name] = (
            _folded_wer(text, out["text"]),
            out["language"],
            out["text"],
        )
    english = [wers[name] for name, *_ in clips if name in SPEECH_TEXT]
    assert np.mean(english) <= ENGLISH_WER_MAX, texts
    assert np.mean(list(wers.values())) <= ALL_WER_MAX, (wers, texts)
    right = sum(languages[name] == language for name, _, _, language in clips)
    assert right >= len(clips) - 1, languages


def test_no_transcript_on_music(
    asr: AsrStage, vad: VadStage, tagger: TaggingStage, music_16k: np.ndarray
) -> None:
    (cue,) = asr([_input(music_16k, cues=_cues(music_16k, vad, tagger))])
    assert cue.output["transcribed"] is False and cue.output["text"] == ""
    assert "no speech" in cue.output["reason"]


@pytest.fixture(scope="module")
def music_stage() -> MusicStage:
    stage = MusicStage(MusicConfig())
    stage.setup()
    return stage


def test_music_gate_opens_on_music_only(
    music_stage: MusicStage, vad: VadStage, tagger: TaggingStage
) -> None:
    gates = {}
    for name in ("music_pingus.ogg", "speech_fox.wav", "engine_start.mp3"):
        signal = example_audio(name)
        (cue,) = music_stage([_input(signal, cues=_cues(signal, vad, tagger))])
        gates[name] = cue.output["gate"]["open"]
        if gates[name]:
            assert 40 <= cue.output["tempo_bpm"] <= 240 and cue.output["key"]
        else:
            assert set(cue.output) == {"gate"}
    assert gates == {"music_pingus.ogg": True, "speech_fox.wav": False, "engine_start.mp3": False}


def drum_loop(bpm: float, seconds: float, rate: int = 16_000) -> np.ndarray:
    """Kick on every beat, hi-hat on the off-beats, a bass note per bar: a real groove."""
    rng = np.random.default_rng(3)
    out = np.zeros(int(seconds * rate), np.float32)
    beat = 60.0 / bpm
    t_kick = np.arange(int(0.15 * rate)) / rate
    kick = (
        np.sin(2 * np.pi * (50 + 100 * np.exp(-t_kick * 30)) * t_kick) * np.exp(-t_kick * 18)
    ).astype(np.float32)
    hat = (
        rng.standard_normal(int(0.04 * rate)) * np.exp(-np.arange(int(0.04 * rate)) / 100)
    ).astype(np.float32) * 0.2
    for k in range(int(seconds / beat)):
        start = int(k * beat * rate)
        seg = out[start : start + len(kick)]
        seg += kick[: len(seg)]
        off = int((k + 0.5) * beat * rate)
        seg = out[off : off + len(hat)]
        seg += hat[: len(seg)]
    t = np.arange(len(out)) / rate
    out += 0.15 * np.sin(2 * np.pi * 55 * t) * (np.sin(2 * np.pi * t / (4 * beat)) > 0)
    return out / np.max(np.abs(out)) * 0.8


@pytest.mark.parametrize("bpm", [96.0, 128.0])
def test_tempo_of_a_clip_of_known_tempo(bpm: float, music_stage: MusicStage) -> None:
    assert music_stage._dsp is not None
    signal = drum_loop(bpm, 12.0)
    found = music_stage._dsp.tempo(signal, 16_000)["tempo_bpm"]
    assert abs(found - bpm) / bpm <= 0.04, found


def test_vision_names_the_cat_in_the_video(tmp_path: Path) -> None:
    path = EXAMPLES / "video_cat.mp4"
    frames = sample_frames(path, frame_times(0.0, 9.9, 1.0, 8), 448, 30)
    stage = VisionStage(VisionConfig())
    stage.setup()
    (cue,) = stage([StageInput(Clip("v", str(path)), {VIDEO_FRAMES: frames}, {})])
    labels = [o["label"] for o in cue.output["objects"]]
    assert any("cat" in label or label == "tabby" for label in labels), labels
    assert len(cue.output["frames"]) == len(frames)
    assert all(f["time_s"] <= 9.9 for f in cue.output["frames"])
    assert cue.output["generated"] is False and cue.provenance.model_revision.startswith("sha256:")


def test_given_tags_pass_through() -> None:
    clip = Clip("c", "/c", tags=(Tag("Speech", 0.95), Tag("Dog")))
    (cue,) = GivenTagsStage()([StageInput(clip, {}, {})])
    assert cue.output["formatted"] == "Speech(95%), Dog"
    assert GivenTagsStage().clip_key(clip) != GivenTagsStage().clip_key(Clip("c", "/c"))


def test_derived_description_names_the_events(vad: VadStage, tagger: TaggingStage) -> None:
    stage = AudioDescriptionStage(AudioDescriptionConfig())
    stage.setup()
    texts = {}
    for name in ("engine_start.mp3", "music_pingus.ogg", "speech_fox.wav"):
        signal = example_audio(name)
        (cue,) = stage([_input(signal, cues=_cues(signal, vad, tagger))])
        assert cue.output["generated"] is False
        texts[name] = cue.output["text"]
    assert "Vehicle" in texts["engine_start.mp3"]
    assert texts["music_pingus.ogg"].startswith("Music throughout")
    assert texts["speech_fox.wav"].startswith("Speech throughout")


def test_event_spans_merge_consecutive_patches() -> None:
    timeline = [
        {"start_s": 0.0, "end_s": 0.96, "tags": [{"label": "Dog", "confidence": 0.9}]},
        {"start_s": 0.48, "end_s": 1.44, "tags": [{"label": "Dog", "confidence": 0.7}]},
        {
            "start_s": 2.4,
            "end_s": 3.36,
            "tags": [{"label": "Dog", "confidence": 0.8}, {"label": "Car", "confidence": 0.1}],
        },
    ]
    spans = event_spans(timeline, min_confidence=0.2, max_events=5)
    assert spans == [
        {"label": "Dog", "start_s": 0.0, "end_s": 1.44, "peak_confidence": 0.9},
        {"label": "Dog", "start_s": 2.4, "end_s": 3.36, "peak_confidence": 0.8},
    ]


def test_on_screen_text_is_read_by_tesseract() -> None:
    """Needs the tesseract binary (.ci/run installs Debian's tesseract-ocr)."""
    import cv2

    from fusionaudio.backends.imagenet_vision import ImagenetFacesOcr

    frame = np.full((240, 640, 3), 255, np.uint8)
    cv2.putText(frame, "EXIT SIGN", (40, 140), cv2.FONT_HERSHEY_SIMPLEX, 2.5, (0, 0, 0), 6)
    backend = ImagenetFacesOcr()
    backend.setup()
    result = backend.analyse([(1.0, frame)])
    assert result["ocr_available"], "tesseract is not installed"
    assert "EXIT" in result["frames"][0]["text"] and result["text"] == [result["frames"][0]["text"]]
