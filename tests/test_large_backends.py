"""The paper's large-model backends through their real loading code, on tiny random
checkpoints these tests build, and the OpenAI-compatible backends against a local server."""

from __future__ import annotations

import base64
import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fusionaudio.backends.htdemucs_torch import HTDemucsTorch
from fusionaudio.config import RunConfig
from fusionaudio.media.audio import AudioView
from fusionaudio.media.frames import frame_times, sample_frames
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip, Cue, Provenance
from fusionaudio.stages.base import (
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
)
from fusionaudio.stages.experts.music import MusicConfig, MusicStage
from fusionaudio.stages.experts.prompts import load_prompt
from fusionaudio.stages.experts.separation import SeparationConfig, SeparationStage
from fusionaudio.stages.experts.vision import VisionConfig, VisionStage
from fusionaudio.stages.settings import BuildContext, ServerConfig
from tests.media_factory import EXAMPLES, example_audio
from tests.openai_server import ServerScript, serve
from tests.tiny_models import (
    tiny_htdemucs,
    tiny_htdemucs_repo,
    tiny_qwen2_audio,
    tiny_qwen25_vl,
    tiny_whisper,
)

PROV = Provenance("x", "x", "x", "x", "x", 0.0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {
        "htdemucs": tiny_htdemucs(root / "tiny_htdemucs.th"),
        "htdemucs_repo": tiny_htdemucs_repo(root / "demucs_repo"),
        "whisper": tiny_whisper(root / "whisper"),
        "qwen2_audio": tiny_qwen2_audio(root / "qwen2_audio"),
        "qwen25_vl": tiny_qwen25_vl(root / "qwen25_vl"),
    }


def _stereo_item(seconds: float = 2.0) -> StageInput:
    x = example_audio("speech_fox.wav", 44_100)[: int(seconds * 44_100)]
    return StageInput(Clip("s", "/s"), {AUDIO_44K_STEREO: AudioView(np.stack([x, x]), 44_100)}, {})


def test_htdemucs_from_a_checkpoint_file(tiny: dict[str, Path]) -> None:
    stage = SeparationStage(SeparationConfig(backend="htdemucs", model_path=tiny["htdemucs"]))
    stage.setup()
    (out,) = stage([_stereo_item()])
    assert isinstance(out, StageOutput)
    vocals = out.views[VOCALS_16K]
    assert isinstance(vocals, AudioView) and vocals.samples.shape == (1, 32_000)
    assert np.all(np.isfinite(vocals.samples))
    assert out.cue.backend == "htdemucs" and out.cue.provenance.model_revision.startswith("sha256:")


def test_htdemucs_from_a_local_model_repository(tiny: dict[str, Path]) -> None:
    backend = HTDemucsTorch(tiny["htdemucs_repo"], model_name="tinybag")
    backend.setup()
    stems = backend.separate(np.zeros((2, 44_100), np.float32) + 0.01)
    assert stems["vocals"].shape == stems["accompaniment"].shape == (2, 44_100)
    assert backend.model_id == "demucs:tinybag"


def test_htdemucs_missing_checkpoint_says_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        HTDemucsTorch(tmp_path / "nope.th").setup()


def _vad_cue(speech: bool) -> Cue:
    return Cue("vad", "t", "t", {"has_speech": speech, "speech_s": 5.0 if speech else 0.0}, PROV)


def test_transformers_whisper_loads_and_transcribes(tiny: dict[str, Path], tmp_path: Path) -> None:
    # a random checkpoint writes random tokens, which the hallucination screen would
    # (rightly) reject; this test is about loading and decoding, so it reads the raw output
    stage = AsrStage(
        AsrConfig(
            backend="transformers_whisper", model=str(tiny["whisper"]), hallucination_filter=False
        ),
        BuildContext(tmp_path),
    )
    stage.setup()
    signal = example_audio("speech_fox.wav")
    item = StageInput(
        Clip("s", "/s"),
        {AUDIO_16K_MONO: AudioView(signal[None, :], 16_000)},
        {"vad": _vad_cue(True)},
    )
    (cue,) = stage([item])
    assert cue.output["transcribed"] is True and isinstance(cue.output["text"], str)
    assert cue.backend == "transformers_whisper" and cue.model == str(tiny["whisper"])
    # segments from Whisper's timestamp tokens, inside the clip, in order
    segments = cue.output["segments"]
    assert segments and cue.output["text"] == " ".join(s["text"] for s in segments)
    duration = len(signal) / 16_000
    assert all(0 <= s["start_s"] <= s["end_s"] <= round(duration, 2) for s in segments)
    assert [s["start_s"] for s in segments] == sorted(s["start_s"] for s in segments)
    assert all(isinstance(s["avg_logprob"], float) for s in segments)
    screened = AsrStage(
        AsrConfig(backend="transformers_whisper", model=str(tiny["whisper"])),
        BuildContext(tmp_path),
    )
    screened.setup()
    (cue,) = screened([item])
    # through the screen: either kept, or rejected with the reasons listed
    assert cue.output["transcribed"] or cue.output["rejected_segments"]


def _mono_item(name: str, cues: dict[str, Cue] | None = None) -> StageInput:
    signal = example_audio(name)
    return StageInput(
        Clip(name, name), {AUDIO_16K_MONO: AudioView(signal[None, :], 16_000)}, cues or {}
    )


def test_qwen2_audio_describes_with_the_papers_prompt(tiny: dict[str, Path]) -> None:
    stage = AudioDescriptionStage(
        AudioDescriptionConfig(backend="qwen2_audio", model=str(tiny["qwen2_audio"]))
    )
    stage.setup()
    (cue,) = stage([_mono_item("engine_start.mp3")])
    assert cue.output["generated"] is True and isinstance(cue.output["text"], str)
    assert cue.provenance.prompt_version == load_prompt("audio_description").identity


def test_qwen2_audio_music_description_behind_the_gate(tiny: dict[str, Path]) -> None:
    stage = MusicStage(MusicConfig(backend="qwen2_audio", model=str(tiny["qwen2_audio"])))
    stage.setup()
    music = Cue("tagging", "t", "t", {"posteriors": {"Music": 0.9}}, PROV)
    silence = Cue("tagging", "t", "t", {"posteriors": {"Speech": 0.9}}, PROV)
    open_, shut = stage(
        [
            _mono_item("music_pingus.ogg", {"tagging": music}),
            _mono_item("speech_fox.wav", {"tagging": silence}),
        ]
    )
    assert open_.output["gate"]["open"] and open_.output["generated"] is True
    assert open_.provenance.prompt_version == load_prompt("music_description").identity
    assert set(shut.output) == {"gate"} and shut.provenance.prompt_version is None


def test_qwen25_vl_writes_a_visual_record(tiny: dict[str, Path]) -> None:
    stage = VisionStage(VisionConfig(backend="qwen2_5_vl", model=str(tiny["qwen25_vl"])))
    stage.setup()
    frames = sample_frames(EXAMPLES / "video_cat.mp4", frame_times(0, 9.9, 0.4, 3), 224, 30)
    (cue,) = stage([StageInput(Clip("v", "v"), {VIDEO_FRAMES: frames}, {})])
    assert cue.output["generated"] is True and len(cue.output["frame_times_s"]) == 3
    assert cue.provenance.prompt_version == load_prompt("vision").identity


def test_openai_audio_and_vision_requests_carry_the_media() -> None:
    script = ServerScript(
        reply=lambda body: "A recorded description.", actions=["500", "malformed"]
    )
    with serve(script) as url:
        server = ServerConfig(base_url=url, model="test-model", backoff_s=0.01)
        describe = AudioDescriptionStage(
            AudioDescriptionConfig(backend="openai_audio", server=server)
        )
        describe.setup()
        (cue,) = describe([_mono_item("speech_fox.wav")])
        assert cue.output == {"generated": True, "text": "A recorded description."}
        assert len(script.requests) == 3  # a 500 and a garbled body were retried
        content = script.requests[-1]["messages"][0]["content"]
        audio_part = next(p for p in content if p["type"] == "input_audio")
        wav, rate = sf.read(io.BytesIO(base64.b64decode(audio_part["input_audio"]["data"])))
        assert rate == 16_000 and len(wav) == len(example_audio("speech_fox.wav"))

        vision = VisionStage(VisionConfig(backend="openai_vision", server=server))
        vision.setup()
        frames = sample_frames(EXAMPLES / "video_cat.mp4", [0.5, 2.0], 224, 30)
        vision([StageInput(Clip("v", "v"), {VIDEO_FRAMES: frames}, {})])
        parts = script.requests[-1]["messages"][0]["content"]
        images = [p for p in parts if p["type"] == "image_url"]
        assert len(images) == 2 and images[0]["image_url"]["url"].startswith(
            "data:image/jpeg;base64,"
        )
        assert any(p.get("text", "").startswith("Frame at 00:00") for p in parts)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_full_run_with_the_paper_backends_and_a_dead_server(
    tiny: dict[str, Path], tmp_path: Path, full_config: RunConfig
) -> None:
    """Every large backend in one `run`; the music server is down, so only the clip that
    opens the music gate gets an error, and every other clip completes."""
    data = full_config.model_dump(mode="json")
    ex = data["experts"]
    ex["separation"].update(backend="htdemucs", model_path=str(tiny["htdemucs"]))
    ex["asr"].update(backend="transformers_whisper", model=str(tiny["whisper"]))
    ex["audio_description"].update(backend="qwen2_audio", model=str(tiny["qwen2_audio"]))
    dead = {
        "base_url": f"http://127.0.0.1:{_free_port()}/v1",
        "model": "m",
        "max_retries": 1,
        "backoff_s": 0.01,
        "timeout_s": 2,
    }
    ex["music"].update(backend="openai_audio", server=dead)
    ex["vision"].update(backend="qwen2_5_vl", model=str(tiny["qwen25_vl"]))
    data["media"]["max_duration_s"] = 4.0
    summary = run(EXAMPLES, tmp_path / "run", RunConfig.model_validate(data))
    records = {
        r["clip_id"]: r
        for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
    }
    music = records["music_pingus.ogg"]
    assert music["status"] == "error" and music["error"].startswith("music failed: LLMError")
    assert "separation" in music["cues"] and "asr" in music["cues"]  # computed work is kept
    for name in ("speech_fox.wav", "engine_start.mp3", "video_cat.mp4"):
        assert records[name]["status"] == "ok", records[name]["error"]
        assert records[name]["cues"]["separation"]["backend"] == "htdemucs"
        assert records[name]["cues"]["audio_description"]["backend"] == "qwen2_audio"
    assert records["video_cat.mp4"]["cues"]["vision"]["backend"] == "qwen2_5_vl"
    assert records["speech_fox.wav"]["cues"]["asr"]["backend"] == "transformers_whisper"
    assert summary.counts == {"ok": 3, "error": 1, "filtered": 0, "uncertain": 0}
