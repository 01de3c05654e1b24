"""A role's name is its config key, its stage's name and its registry: every section
builds the stage of its name, and a backend is chosen only from its role's registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from fusionaudio.config import ConfigError, ExpertsConfig, RunConfig, load_config
from fusionaudio.pipeline.graph import build_stages
from fusionaudio.pipeline.preflight import BACKEND_PACKAGES, MODEL_BACKENDS, SERVER_BACKENDS
from fusionaudio.stages.experts.asr import ASR_BACKENDS, AsrConfig
from fusionaudio.stages.experts.audio_description import (
    AUDIO_DESCRIPTION_BACKENDS,
    AudioDescriptionConfig,
)
from fusionaudio.stages.experts.music import MUSIC_BACKENDS, MusicConfig
from fusionaudio.stages.experts.separation import SEPARATION_BACKENDS, SeparationConfig
from fusionaudio.stages.experts.tagging import TAGGER_BACKENDS, TaggingConfig
from fusionaudio.stages.experts.vad import VAD_BACKENDS, VadConfig
from fusionaudio.stages.experts.vision import VISION_BACKENDS, VisionConfig
from fusionaudio.stages.experts.voice import VOICE_BACKENDS, VoiceConfig
from fusionaudio.stages.quality.clap_score import DEFAULT_THRESHOLDS, SCORERS, QualityConfig

# role -> (its default backend, its registry)
REGISTRIES: dict[str, tuple[str, Mapping[str, object]]] = {
    "vad": (VadConfig().backend, VAD_BACKENDS),
    "tagging": (TaggingConfig().backend, TAGGER_BACKENDS),
    "separation": (SeparationConfig().backend, SEPARATION_BACKENDS),
    "asr": (AsrConfig().backend, ASR_BACKENDS),
    "voice": (VoiceConfig().backend, VOICE_BACKENDS),
    "audio_description": (AudioDescriptionConfig().backend, AUDIO_DESCRIPTION_BACKENDS),
    "music": (MusicConfig().backend, MUSIC_BACKENDS),
    "vision": (VisionConfig().backend, VISION_BACKENDS),
}
FUSION_LLM_BACKENDS = {"llama_cpp", "openai", "vllm"}


def test_every_expert_section_builds_the_stage_of_its_name_in_dependency_order() -> None:
    data = load_config().model_dump(mode="json")
    for section in data["experts"].values():
        section["enabled"] = True
    data["fusion"]["enabled"] = False
    names = [stage.name for stage in build_stages(RunConfig.model_validate(data))]
    assert sorted(names) == sorted(ExpertsConfig.model_fields)
    assert names == [
        "given_tags", "vad", "tagging", "separation", "asr", "voice", "audio_description",
        "music", "vision",
    ]  # fmt: skip


@pytest.mark.parametrize("role", sorted(REGISTRIES))
def test_a_backend_is_one_of_its_roles_registry(role: str, tmp_path: Path) -> None:
    default, registry = REGISTRIES[role]
    assert default in registry
    error = _config_error(tmp_path, f"experts: {{{role}: {{backend: no_such_backend}}}}")
    known = ", ".join(sorted(registry))
    assert (
        f"experts.{role}.backend: Value error, unknown {role} backend 'no_such_backend'; "
        f"known: {known}"
    ) in error


def test_a_scorer_is_one_of_the_registry_and_has_a_default_threshold(tmp_path: Path) -> None:
    assert QualityConfig().scorer in SCORERS
    assert set(DEFAULT_THRESHOLDS) == set(SCORERS)
    error = _config_error(tmp_path, "quality: {scorer: nope}")
    assert "quality.scorer: Value error, unknown scorer 'nope'; known: clap_checkpoint" in error


def test_preflight_checks_only_registered_backends() -> None:
    """A renamed backend cannot leave a preflight check behind under its old name."""
    registered = set(SCORERS) | FUSION_LLM_BACKENDS
    for _, registry in REGISTRIES.values():
        registered |= set(registry)
    assert set(BACKEND_PACKAGES) | SERVER_BACKENDS | MODEL_BACKENDS <= registered


def _config_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return str(error.value)
