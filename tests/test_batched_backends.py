"""Batched model calls give each clip what it gets alone: separation (Spleeter on real
recordings, HT-Demucs on a tiny random checkpoint) within float tolerance; Whisper
through CTranslate2 (the packaged model on real speech in three languages) the same
transcript; the
generative Qwen2-Audio and Qwen2.5-VL (tiny random checkpoints) one answer per clip, the
same on every run, and here (float32 on a CPU) the answer each clip gets alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionaudio.backends.audio_llm import Qwen2AudioTransformers
from fusionaudio.backends.htdemucs_torch import HTDemucsTorch
from fusionaudio.backends.spleeter_torch import SpleeterTorch
from fusionaudio.backends.vision_llm import Qwen25VLTransformers
from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper, WhisperWindow
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.media.frames import frame_times, sample_frames
from tests.media_factory import EXAMPLES
from tests.real_sounds import clips_of, decode_16k, labelled_clips
from tests.tiny_models import tiny_htdemucs, tiny_qwen2_audio, tiny_qwen25_vl


def stereo_44k(path: Path, seconds: float) -> np.ndarray:
    audio = decode_audio(path, Window(0, seconds), 30).audio
    return audio.channel_layout(2).resample(44_100).samples


def assert_same_stems(
    batched: list[dict[str, np.ndarray]], alone: list[dict[str, np.ndarray]]
) -> None:
    assert len(batched) == len(alone)
    for b, a in zip(batched, alone, strict=True):
        assert set(b) == set(a) == {"vocals", "accompaniment"}
        for stem in a:
            assert b[stem].shape == a[stem].shape
            np.testing.assert_allclose(b[stem], a[stem], atol=1e-4, rtol=0)


def test_spleeter_separates_a_batch_of_real_clips_as_each_alone() -> None:
    """Three real recordings of different lengths; the first, two of them end to end,
    spans two U-Net segments."""
    long = [
        stereo_44k(clips_of("rain")[0].path, 10.0),
        stereo_44k(EXAMPLES / "speech_fox.wav", 6.0),
    ]
    clips = [
        np.concatenate(long, axis=1),
        stereo_44k(clips_of("dog_bark")[0].path, 4.0),
        stereo_44k(EXAMPLES / "speech_fox.wav", 6.0),
    ]
    assert len({c.shape[1] for c in clips}) == 3 and max(c.shape[1] for c in clips) > 512 * 1024
    spleeter = SpleeterTorch(threads=1)
    spleeter.setup()
    alone = [spleeter.separate(c) for c in clips]
    assert_same_stems(spleeter.separate_batch(clips), alone)


def test_faster_whisper_decodes_a_batch_of_speech_in_several_languages_as_each_alone(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One encoder pass and one ``generate`` for the batch, each clip under the language
    detected for it. Clear speech settles in its first window, so no clip here is sent
    back to faster-whisper's one-clip loop; a clip longer than a window always is."""
    speech = [c for c in labelled_clips() if c.has_speech]
    signals = [
        decode_16k(next(c.path for c in speech if f"in {language}" in c.caption))
        for language in ("French", "Russian", "Czech")
    ]
    whisper = FasterWhisper(models_dir, compute_type="float32", beam_size=1, threads=2)
    whisper.setup()
    extractor = whisper._loaded().feature_extractor
    assert all(WhisperWindow.of(extractor(s), extractor).fits for s in signals)
    assert not WhisperWindow.of(extractor(np.zeros(16_000 * 31, np.float32)), extractor).fits

    alone = [whisper.transcribe(s) for s in signals]
    assert [t["language"] for t in alone] == ["fr", "ru", "cs"]
    assert all(t["segments"] for t in alone)

    def not_alone(signal: np.ndarray) -> dict[str, object]:
        raise AssertionError("a clip was sent back to the one-clip loop")

    monkeypatch.setattr(whisper, "transcribe", not_alone)
    assert whisper.transcribe_batch(signals) == alone


def test_htdemucs_stacks_clips_of_one_length_and_runs_the_others_alone(tmp_path: Path) -> None:
    speech = stereo_44k(EXAMPLES / "speech_fox.wav", 3.0)[:, :88_200]
    music = stereo_44k(EXAMPLES / "music_pingus.ogg", 3.0)[:, :88_200]
    short = stereo_44k(clips_of("dog_bark")[0].path, 1.5)
    model = HTDemucsTorch(tiny_htdemucs(tmp_path / "tiny.th"))
    model.setup()
    clips = [speech, short, music]
    assert speech.shape == music.shape != short.shape
    alone = [model.separate(c) for c in clips]
    batched = model.separate_batch(clips)
    assert_same_stems(batched, alone)
    assert not np.allclose(batched[0]["vocals"], batched[2]["vocals"])


@pytest.fixture(scope="module")
def qwen2_audio(tmp_path_factory: pytest.TempPathFactory) -> Qwen2AudioTransformers:
    model = Qwen2AudioTransformers(str(tiny_qwen2_audio(tmp_path_factory.mktemp("qa") / "m")))
    model.max_new_tokens = 8
    model.setup()
    return model


def test_qwen2_audio_answers_a_batch_in_one_generate(qwen2_audio: Qwen2AudioTransformers) -> None:
    signals = [decode_16k(clips_of("dog_bark")[0].path), decode_16k(EXAMPLES / "speech_fox.wav")]
    prompts = ["Describe the audio in detail.", "Describe the audio."]
    first = qwen2_audio.describe_batch(signals, prompts)
    assert len(first) == 2 and all(isinstance(t, str) for t in first)
    assert qwen2_audio.describe_batch(signals, prompts) == first
    # left padding and its attention mask leave each row's greedy answer as it is alone
    assert [qwen2_audio.describe(x, p) for x, p in zip(signals, prompts, strict=True)] == first
    assert qwen2_audio.describe_batch([], []) == []


def test_qwen25_vl_answers_a_batch_of_clips_in_one_generate(tmp_path: Path) -> None:
    model = Qwen25VLTransformers(str(tiny_qwen25_vl(tmp_path / "vl")))
    model.max_new_tokens = 8
    model.setup()
    video = EXAMPLES / "video_cat.mp4"
    clips = [
        [(f.time_s, f.rgb) for f in sample_frames(video, frame_times(0, 9.9, 0.4, 3), 224, 30)],
        [(f.time_s, f.rgb) for f in sample_frames(video, frame_times(4, 9.9, 1.0, 2), 224, 30)],
    ]
    prompts = ["Describe what is seen.", "Describe what is seen."]
    first = model.describe_frames_batch(clips, prompts)
    assert len(first) == 2 and all(isinstance(t, str) for t in first)
    assert model.describe_frames_batch(clips, prompts) == first
    assert [model.describe_frames(c, p) for c, p in zip(clips, prompts, strict=True)] == first


def test_clap_scores_a_batch_of_pairs_as_each_alone(tmp_path: Path) -> None:
    """The paper's CLAP scorer (tiny random checkpoint): the batch's real clips through
    the audio tower at once and its captions through the text tower at once."""
    from fusionaudio.backends.clap_transformers import TransformersClap
    from tests.tiny_models import tiny_clap

    clap = TransformersClap(str(tiny_clap(tmp_path / "clap")))
    clap.setup()
    labelled = [clips_of(label)[0] for label in ("dog_bark", "rain", "siren")]
    signals = [
        decode_audio(c.path, Window(0, 30), 30).audio.mono().resample(48_000).samples[0]
        for c in labelled
    ]
    captions = [c.caption for c in labelled]
    alone = [
        clap.score(signal, [caption])[0] for signal, caption in zip(signals, captions, strict=True)
    ]
    batched = clap.score_pairs(signals, captions)
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    assert len(set(np.round(batched, 6))) == 3


def test_yamnet_scores_a_batch_of_real_clips_as_each_alone(models_dir: Path) -> None:
    from fusionaudio.backends.yamnet_onnx import YamnetOnnx

    signals = [decode_16k(clips_of(label)[0].path) for label in ("dog_bark", "rain", "siren")]
    for precision in ("float32", "int8"):
        yamnet = YamnetOnnx(models_dir, precision=precision)  # type: ignore[arg-type]
        yamnet.setup()
        alone = [yamnet.patch_scores(s) for s in signals]
        batched = yamnet.patch_scores_batch(signals)
        assert [b.shape for b in batched] == [a.shape for a in alone]
        for b, a in zip(batched, alone, strict=True):
            np.testing.assert_allclose(b, a, atol=1e-5)
