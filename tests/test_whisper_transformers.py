"""The transformers Whisper backend of the paper preset: whole windows past 30 s
(sequential long-form decoding), one padded batch per call that gives every clip what it
would get alone, and bfloat16 on CUDA by default.

The tiny random checkpoint (``tests/tiny_models.py``) exercises the real loading and
decoding code fast; the real Whisper base, converted from the packaged CTranslate2
weights (``tests/whisper_ct2_to_hf.py``), checks that what comes out is speech and
agrees with faster-whisper on the same weights.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionaudio.backends.audio_llm import Qwen2AudioTransformers
from fusionaudio.backends.transformers_loading import default_dtype
from fusionaudio.backends.whisper_ctranslate2 import FasterWhisper
from fusionaudio.backends.whisper_transformers import TransformersWhisper
from fusionaudio.config import RunConfig, load_config
from fusionaudio.media.audio import AudioView
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.schema import Clip, Cue, Provenance
from fusionaudio.stages.base import AUDIO_16K_MONO, StageInput
from fusionaudio.stages.experts.asr import AsrConfig, AsrStage
from fusionaudio.stages.settings import BuildContext
from tests.media_factory import example_audio
from tests.real_sounds import clips_of, decode_16k, labelled_clips
from tests.tiny_models import tiny_whisper
from tests.whisper_ct2_to_hf import whisper_base_hf

RATE = 16_000
WINDOW_FRAMES = 3000  # one 30 s Whisper window
TINY_TOKENS = 24  # a random model never ends its text; this bounds each window
FOX_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Today we are testing an offline audio captioning pipeline."
)
PROV = Provenance("x", "x", "x", "x", "x", 0.0)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_whisper(tmp_path_factory.mktemp("tiny") / "whisper")


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> TransformersWhisper:
    backend = TransformersWhisper(str(tiny_dir), max_new_tokens=TINY_TOKENS)
    backend.setup()
    return backend


@pytest.fixture(scope="module")
def three_clips() -> list[np.ndarray]:
    """Three real speech clips of different lengths (7.3 s, 4.6 s, 3.2 s)."""
    male = {c.path.name: c for c in clips_of("speech_male")}
    female = clips_of("speech_female")
    picked = [
        male["fillets_cs_big_fish_zahynuli.ogg"],
        female[0],
        male["fillets_nl_big_fish_prolezt.flac"],
    ]
    signals = [decode_16k(c.path) for c in picked]
    assert len({len(s) for s in signals}) == 3
    return signals


@pytest.fixture(scope="module")
def speech_45s() -> np.ndarray:
    """Every speech clip of the shared set, end to end with 0.3 s gaps (about 45 s)."""
    gap = np.zeros(int(0.3 * RATE), np.float32)
    parts: list[np.ndarray] = []
    for clip in labelled_clips():
        if clip.label in ("speech_male", "speech_female"):
            parts += [decode_16k(clip.path).astype(np.float32), gap]
    signal = np.concatenate(parts[:-1])
    assert len(signal) > 40 * RATE
    return signal


def _same(alone: dict[str, Any], batched: dict[str, Any]) -> None:
    assert batched["text"] == alone["text"]
    assert batched["language"] == alone["language"]
    assert len(batched["segments"]) == len(alone["segments"])
    for a, b in zip(alone["segments"], batched["segments"], strict=True):
        assert (b["start_s"], b["end_s"], b["text"]) == (a["start_s"], a["end_s"], a["text"])
        assert b["avg_logprob"] == pytest.approx(a["avg_logprob"], abs=2e-3)


def _spy_generate(backend: TransformersWhisper, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    calls: list[dict] = []
    model = backend._model
    generate = model.generate

    def spy(features: Any, **kwargs: Any) -> Any:
        calls.append({"shape": tuple(features.shape), **kwargs})
        return generate(features, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    return calls


def test_a_batch_decodes_each_clip_as_it_would_alone(
    tiny: TransformersWhisper,
    three_clips: list[np.ndarray],
    speech_45s: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alone = [tiny.transcribe(s) for s in three_clips]
    calls = _spy_generate(tiny, monkeypatch)
    batched = tiny.transcribe_batch(three_clips)
    assert len(calls) == 1 and calls[0]["shape"] == (3, 80, WINDOW_FRAMES)
    for a, b in zip(alone, batched, strict=True):
        _same(a, b)
    # a clip over 30 s in the batch: every clip is decoded up to its own last frame
    long_alone = tiny.transcribe(speech_45s)
    calls.clear()
    mixed = tiny.transcribe_batch([three_clips[0], speech_45s, three_clips[2]])
    (call,) = calls
    assert call["shape"][0] == 3 and call["shape"][2] > WINDOW_FRAMES
    assert call["attention_mask"].sum(-1).tolist() == [
        WINDOW_FRAMES,
        call["shape"][2],
        WINDOW_FRAMES,
    ]
    for a, b in zip([alone[0], long_alone, alone[2]], mixed, strict=True):
        _same(a, b)


def _item(signal: np.ndarray, speech: bool, name: str) -> StageInput:
    vad = Cue("vad", "t", "t", {"has_speech": speech, "speech_s": 5.0 if speech else 0.0}, PROV)
    return StageInput(
        Clip(name, name), {AUDIO_16K_MONO: AudioView(signal[None, :], RATE)}, {"vad": vad}
    )


def test_the_stage_hands_its_batch_over_at_once(
    tiny_dir: Path,
    three_clips: list[np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stage = AsrStage(
        AsrConfig(backend="transformers_whisper", model=str(tiny_dir), batch_size=4),
        BuildContext(tmp_path),
    )
    stage.setup()
    backend = stage._backend
    assert isinstance(backend, TransformersWhisper)
    backend.max_new_tokens = TINY_TOKENS
    items = [_item(s, True, f"c{i}") for i, s in enumerate(three_clips)]
    items.insert(1, _item(three_clips[1], False, "quiet"))  # the VAD gate still applies
    one_by_one = [stage([item])[0] for item in items]
    seen: list[int] = []
    batch_call = backend.transcribe_batch

    def spy(signals: list[np.ndarray]) -> list[dict[str, Any]]:
        seen.append(len(signals))
        return batch_call(signals)

    monkeypatch.setattr(backend, "transcribe_batch", spy)
    together = stage(items)
    assert seen == [3]  # one call for the three clips with speech
    assert together[1].output["transcribed"] is False
    for a, b in zip(one_by_one, together, strict=True):
        got, want = _without_logprobs(b.output), _without_logprobs(a.output)
        assert got[0] == want[0]
        assert got[1] == pytest.approx(want[1], abs=2e-3)


def _without_logprobs(output: dict[str, Any]) -> tuple[dict[str, Any], list[float]]:
    """A cue's output without its log-probabilities, and those apart: a batch computes
    them with other padding, equal to float tolerance."""
    logprobs: list[float] = []

    def strip(segment: dict[str, Any]) -> dict[str, Any]:
        logprobs.append(segment["avg_logprob"])
        reason = segment.get("reason")
        rest = {k: v for k, v in segment.items() if k not in ("avg_logprob", "reason")}
        return rest if reason is None else {**rest, "reason": reason.split(" (")[0]}

    out = {k: v for k, v in output.items() if k != "avg_logprob"}
    logprobs.append(output.get("avg_logprob") or 0.0)
    out["segments"] = [strip(s) for s in output["segments"]]
    out["rejected_segments"] = [strip(s) for s in output.get("rejected_segments", [])]
    return out, logprobs


def test_long_form_covers_the_whole_window(
    tiny: TransformersWhisper, speech_45s: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _spy_generate(tiny, monkeypatch)
    result = tiny.transcribe(speech_45s)
    duration = len(speech_45s) / RATE
    (call,) = calls
    # every frame of the 45 s is given to Whisper's sequential decoding, not the first 30 s
    assert call["shape"][2] == len(speech_45s) // 160 > WINDOW_FRAMES
    assert call["return_timestamps"] is True
    assert result["segments"]
    assert all(0 <= s["start_s"] <= s["end_s"] <= round(duration, 2) for s in result["segments"])


def test_transformers_dtype_defaults_by_device() -> None:
    assert default_dtype("cuda") == default_dtype("cuda:1") == "bfloat16"
    assert default_dtype("cpu") == "float32"
    assert TransformersWhisper("m", device="cuda").dtype == "bfloat16"
    assert TransformersWhisper("m", device="cpu").dtype == "float32"
    assert TransformersWhisper("m", device="cuda", dtype="float32").dtype == "float32"
    assert Qwen2AudioTransformers("m", device="cuda").dtype == "bfloat16"  # the shared base
    on_gpu = TransformersWhisper("m", device="cuda").fingerprint()
    assert on_gpu["dtype"] == "bfloat16"
    assert on_gpu != TransformersWhisper("m", device="cuda", dtype="float16").fingerprint()
    with pytest.raises(ValueError, match="unknown dtype"):
        TransformersWhisper("m", dtype="float8")
    # from the config to the backend, without loading anything
    data = load_config(preset="paper").model_dump(mode="json")
    for name, section in data["experts"].items():
        section["enabled"] = name in ("vad", "asr")
    data["fusion"]["enabled"] = data["qa"]["enabled"] = False

    def asr_stage(**asr: Any) -> AsrStage:
        config = RunConfig.model_validate(
            {**data, "experts": {**data["experts"], "asr": {**data["experts"]["asr"], **asr}}}
        )
        (stage,) = (s for s in build_stages(config) if isinstance(s, AsrStage))
        return stage

    paper = asr_stage()
    assert paper._make().dtype == "bfloat16" and paper.batch_size == 16
    chosen = asr_stage(dtype="float16", batch_size=4)
    assert chosen._make().dtype == "float16" and chosen.batch_size == 4
    on_cpu = asr_stage(device="cpu")
    assert on_cpu._make().dtype == "float32" and on_cpu.batch_size == 1


# --- the real Whisper base, converted from the packaged CTranslate2 weights ---------


@pytest.fixture(scope="session")
def whisper_base(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    return whisper_base_hf(models_dir, tmp_path_factory.mktemp("whisper-base-hf") / "base")


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _overlap(got: str, reference: str) -> float:
    """The share of the reference's words that ``got`` has too."""
    ref = _words(reference)
    have = set(_words(got))
    return sum(w in have for w in ref) / max(len(ref), 1)


@pytest.mark.slow
def test_converted_whisper_base_transcribes_like_faster_whisper(
    whisper_base: Path, models_dir: Path
) -> None:
    hf = TransformersWhisper(str(whisper_base))
    hf.setup()
    fw = FasterWhisper(models_dir, compute_type="float32", beam_size=1, threads=2)
    fw.setup()
    signal = example_audio("speech_fox.wav")
    ours, theirs = hf.transcribe(signal), fw.transcribe(signal)
    assert ours["language"] == theirs["language"] == "en"
    assert _overlap(ours["text"], theirs["text"]) >= 0.9, (ours["text"], theirs["text"])
    assert _overlap(ours["text"], FOX_TEXT) >= 0.85, ours["text"]
    assert len(ours["segments"]) >= 2  # real timestamps, not one clip-long segment
    assert all(s["avg_logprob"] > -1.0 for s in ours["segments"])


@pytest.mark.slow
def test_real_whisper_long_form_transcribes_past_30_seconds(
    whisper_base: Path, models_dir: Path, speech_45s: np.ndarray
) -> None:
    hf = TransformersWhisper(str(whisper_base))
    hf.setup()
    fw = FasterWhisper(models_dir, compute_type="float32", beam_size=1, threads=2)
    fw.setup()
    ours, theirs = hf.transcribe(speech_45s), fw.transcribe(speech_45s)
    duration = len(speech_45s) / RATE
    assert all(0 <= s["start_s"] <= s["end_s"] <= duration for s in ours["segments"])
    assert max(s["end_s"] for s in ours["segments"]) > 40.0
    late = " ".join(s["text"] for s in ours["segments"] if s["start_s"] >= 30.0)
    late_fw = " ".join(s["text"] for s in theirs["segments"] if s["start_s"] >= 30.0)
    assert len(_words(late_fw)) >= 10
    # the clips after the 30 s mark are transcribed, as faster-whisper does on the same weights
    assert _overlap(late, late_fw) >= 0.8, (late, late_fw)
