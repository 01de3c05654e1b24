from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionaudio.backends.yamnet_onnx import log_mel_patches
from fusionaudio.media.audio import AudioView
from fusionaudio.schema import Clip
from fusionaudio.stages.base import AUDIO_16K_MONO, StageInput
from fusionaudio.stages.experts.tagging import TaggerBackend, TaggingConfig, TaggingStage
from fusionaudio.stages.experts.vad import VadBackend, VadConfig, VadStage, speech_segments
from fusionaudio.stages.settings import BuildContext
from tests.media_factory import example_audio


def _inputs(*signals: np.ndarray) -> list[StageInput]:
    return [
        StageInput(Clip(f"c{i}", f"/c{i}"), {AUDIO_16K_MONO: AudioView(s[None, :], 16_000)}, {})
        for i, s in enumerate(signals)
    ]


@pytest.fixture(scope="module")
def vad() -> VadStage:
    stage = VadStage(VadConfig())
    stage.setup()
    return stage


def test_backends_satisfy_their_role_protocols(vad: VadStage, tagger: TaggingStage) -> None:
    assert isinstance(vad._backend, VadBackend)
    assert isinstance(tagger._backend, TaggerBackend)


def test_vad_finds_speech_in_speech_and_none_in_music(
    vad: VadStage, speech_16k: np.ndarray, music_16k: np.ndarray
) -> None:
    engine = example_audio("engine_start.mp3")
    speech, music, env = (c.output for c in vad(_inputs(speech_16k, music_16k, engine)))
    assert speech["has_speech"] and speech["speech_fraction"] > 0.6
    assert speech["segments"][0][0] < 0.5  # speech starts right away in this clip
    assert not music["has_speech"] and music["speech_fraction"] == 0.0
    assert not env["has_speech"]


def test_vad_batches_give_the_same_answer_as_single_clips(
    vad: VadStage, speech_16k: np.ndarray, music_16k: np.ndarray
) -> None:
    together = [c.output for c in vad(_inputs(speech_16k, music_16k[:40_000]))]
    alone = [vad(_inputs(s))[0].output for s in (speech_16k, music_16k[:40_000])]
    assert together == alone


def test_speech_segments_merge_short_gaps_and_drop_blips() -> None:
    probs = np.array([0, 0.9, 0.9, 0.2, 0.9, 0.9, 0, 0, 0, 0, 0.9, 0, 0, 0])
    segments = speech_segments(probs, 0.1, 0.5, min_speech_s=0.15, min_silence_s=0.15)
    assert segments == [(0.1, 0.6)]


def test_yamnet_tells_speech_from_music(
    tagger: TaggingStage, speech_16k: np.ndarray, music_16k: np.ndarray
) -> None:
    speech, music = (c.output for c in tagger(_inputs(speech_16k, music_16k)))
    assert speech["top_tags"][0]["label"] == "Speech"
    assert speech["top_tags"][0]["confidence"] > 0.5
    assert music["top_tags"][0]["label"] == "Music"
    assert music["posteriors"].get("Speech", 0.0) < 0.1
    assert speech["posteriors"].get("Music", 0.0) < 0.1


def test_yamnet_names_the_engine(tagger: TaggingStage) -> None:
    (cue,) = tagger(_inputs(example_audio("engine_start.mp3")))
    labels = [t["label"] for t in cue.output["top_tags"][:3]]
    assert "Vehicle" in labels


def test_timeline_has_one_entry_per_patch(tagger: TaggingStage, speech_16k: np.ndarray) -> None:
    (cue,) = tagger(_inputs(speech_16k))
    patches = log_mel_patches(speech_16k)
    timeline = cue.output["timeline"]
    assert len(timeline) == patches.shape[0]
    assert timeline[1]["start_s"] == pytest.approx(0.48)
    assert timeline[0]["end_s"] == pytest.approx(0.96)
    assert any(t["label"] == "Speech" for t in timeline[2]["tags"])


def test_cue_provenance_names_model_and_revision(
    tagger: TaggingStage, speech_16k: np.ndarray
) -> None:
    (cue,) = tagger(_inputs(speech_16k[:16_000]))
    assert cue.provenance.backend == "yamnet_onnx"
    assert cue.provenance.model_revision.startswith("sha256:")
    assert cue.provenance.config_hash == tagger.config_hash()


def test_log_mel_pads_short_input_to_one_patch() -> None:
    assert log_mel_patches(np.zeros(3200, np.float32)).shape == (1, 1, 96, 64)
    assert log_mel_patches(np.zeros(16_000 * 2, np.float32)).shape == (3, 1, 96, 64)


def test_stages_pickle_before_setup(tmp_path: Path) -> None:
    import pickle

    for stage in (VadStage(VadConfig()), TaggingStage(TaggingConfig(), BuildContext(tmp_path))):
        clone = pickle.loads(pickle.dumps(stage))
        assert clone.fingerprint() == stage.fingerprint()


def test_changing_a_parameter_changes_the_config_hash(tmp_path: Path) -> None:
    context = BuildContext(tmp_path)
    assert (
        TaggingStage(TaggingConfig(top_k=5), context).config_hash()
        != TaggingStage(TaggingConfig(), context).config_hash()
    )
    assert VadStage(VadConfig(threshold=0.6)).config_hash() != VadStage(VadConfig()).config_hash()
