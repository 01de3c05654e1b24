"""The typed run configuration, read from YAML and validated, with named presets.

A user file may start from a preset (``preset: offline``) and override any field;
unknown keys are errors, so a typo never silently falls back to a default. Each expert
role's section (and the quality section) lives beside its stage and backend registry
(``stages/experts/<role>.py``); this module composes them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, FilePath, ValidationError, model_validator

from fusionaudio.stages.experts.asr import AsrConfig
from fusionaudio.stages.experts.audio_description import AudioDescriptionConfig
from fusionaudio.stages.experts.given_tags import GivenTagsConfig
from fusionaudio.stages.experts.music import MusicConfig
from fusionaudio.stages.experts.separation import SeparationConfig
from fusionaudio.stages.experts.tagging import TaggingConfig
from fusionaudio.stages.experts.vad import VadConfig
from fusionaudio.stages.experts.vision import VisionConfig
from fusionaudio.stages.experts.voice import VoiceConfig
from fusionaudio.stages.quality.clap_score import QualityConfig
from fusionaudio.stages.settings import ServerConfig, Strict, default_models_dir

PRESETS = ("offline", "paper")


class ConfigError(Exception):
    """The configuration is invalid; the message is one line fit for a user."""


class MediaConfig(Strict):
    max_duration_s: float = Field(60.0, gt=0, description="analysed window per clip")
    long_clips: Literal["truncate", "segment"] = Field(
        "truncate", description="truncate: analyse the first window; segment: one clip per window"
    )
    min_duration_s: float = Field(0.1, ge=0)
    decode_timeout_s: float = Field(60.0, gt=0)
    max_file_mb: float = Field(4096.0, gt=0, description="larger files are refused per clip")
    frame_rate_hz: float = Field(1.0, gt=0, description="video frames per second for vision")
    max_frames: int = Field(16, ge=1)
    frame_max_side: int = Field(448, ge=32)


class EngineConfig(Strict):
    kind: Literal["local", "sequential", "ray"] = "local"
    queue_size: int | None = Field(
        None, ge=1, description="local: a bound on each step's inbox too; None: in_flight alone"
    )
    in_flight: int | None = Field(
        None,
        ge=1,
        description="local: clips between the source and the results at once; None: twice "
        "each step's batch size x workers, summed",
    )
    decode_workers: int = Field(2, ge=1)
    ray_address: str | None = Field(
        None, description="ray: a cluster (ray://host:10001, auto); none starts one here"
    )
    partition_size: int = Field(1000, ge=1, description="ray: clips per Dataset partition")
    actor_groups: list[list[str]] = Field(
        default_factory=list,
        description="ray: consecutive steps that share one actor (cheap steps on a small "
        "machine: fewer processes for a clip to cross); each other step has a pool of its own",
    )


class StoreConfig(Strict):
    shard_records: int = Field(64, ge=1, description="records per results shard")
    shard_max_age_s: float = Field(10.0, gt=0, description="flush a shard at least this often")
    staging_dir: Path | None = Field(
        None,
        description="where a run folder given as a URI (s3://…) is worked on locally, one "
        "subfolder per URI (default ~/.cache/fusionaudio/staging)",
    )


class ExpertsConfig(Strict):
    vad: VadConfig = VadConfig()
    tagging: TaggingConfig = TaggingConfig()
    separation: SeparationConfig = SeparationConfig()
    asr: AsrConfig = AsrConfig()
    voice: VoiceConfig = VoiceConfig()
    audio_description: AudioDescriptionConfig = AudioDescriptionConfig()
    music: MusicConfig = MusicConfig()
    vision: VisionConfig = VisionConfig()
    given_tags: GivenTagsConfig = GivenTagsConfig()


class LLMConfig(Strict):
    """The text LLM of fusion and QA."""

    backend: Literal["llama_cpp", "openai", "vllm"] = "llama_cpp"
    model: str = Field(
        "qwen2.5-coder-1.5b",
        description="llama_cpp: a packaged name (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, "
        "smollm2-135m) or a GGUF path; vllm: a folder or hub id",
    )
    server: ServerConfig | None = None
    json_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
    n_ctx: int = Field(4096, ge=512)
    threads: int = Field(
        1,
        ge=1,
        description="llama.cpp threads; fusion and QA run at once, so keep their sum <= cores",
    )
    tensor_parallel_size: int = Field(1, ge=1)


class FusionConfig(Strict):
    enabled: bool = True
    llm: LLMConfig = LLMConfig()
    prompt_style: Literal["small", "paper"] = Field(
        "small", description="small: redacted evidence for small models; paper: the full cues"
    )
    prompt_file: FilePath | None = Field(
        None,
        description="your own prompt, in the shipped files' format (stages/fusion/prompts/); "
        "editing it recomputes fusion and what follows",
    )
    max_tokens: int = Field(300, ge=16)
    temperature: float = Field(0.2, ge=0)
    max_attempts: int = Field(3, ge=1)
    seed: int = 0
    workers: int = Field(1, ge=1, description="concurrent requests (servers); keep 1 for llama_cpp")
    batch_size: int = Field(
        1, ge=1, description="clips per stage call; a server gets a batch's requests at once"
    )


class QAConfig(Strict):
    enabled: bool = True
    llm: LLMConfig | None = Field(None, description="None: the fusion LLM")
    pairs: int = Field(4, ge=1, le=10)
    llm_pairs: int = Field(
        2,
        ge=0,
        le=10,
        description="how many of the pairs the LLM writes; code writes the rest from the "
        "caption plan (exact, and fast on a CPU); set it to `pairs` on a GPU",
    )
    prompt_file: FilePath | None = Field(
        None, description="your own QA prompt, in the format of stages/fusion/prompts/qa.v2.txt"
    )
    max_tokens: int = Field(400, ge=32)
    temperature: float = Field(0.3, ge=0)
    max_attempts: int = Field(3, ge=1)
    seed: int = 0
    workers: int = Field(1, ge=1)
    batch_size: int = Field(
        1, ge=1, description="clips per stage call; a server gets a batch's requests at once"
    )


class InputsConfig(Strict):
    """Where input files may live. A manifest's relative paths must stay inside the
    manifest's folder, and a folder's files inside the folder (a ``..`` or a symlink
    leading out is that clip's error) unless ``allow_outside_root``; with ``root`` set,
    every path, absolute ones too, must resolve inside it."""

    root: Path | None = None
    allow_outside_root: bool = False


class RunConfig(Strict):
    preset: str = "offline"
    models_dir: Path = Field(default_factory=default_models_dir)
    inputs: InputsConfig = InputsConfig()
    media: MediaConfig = MediaConfig()
    engine: EngineConfig = EngineConfig()
    store: StoreConfig = StoreConfig()
    experts: ExpertsConfig = ExpertsConfig()
    fusion: FusionConfig = FusionConfig()
    qa: QAConfig = QAConfig()
    quality: QualityConfig = QualityConfig()

    @model_validator(mode="after")
    def _actor_groups_name_steps(self) -> RunConfig:
        """A misspelt step in a group would otherwise be taken for a stage switched off."""
        steps = {"load", *ExpertsConfig.model_fields, "fusion", "clap", "qa"}
        unknown = sorted({n for group in self.engine.actor_groups for n in group} - steps)
        if unknown:
            raise ValueError(
                f"engine.actor_groups: no step named {', '.join(unknown)} "
                f"(the steps: {', '.join(sorted(steps))})"
            )
        return self

    def output_affecting(self) -> dict[str, Any]:
        """The part of the config that changes results (the engine and store do not)."""
        return {
            "media": self.media.model_dump(mode="json"),
            "decisions": {"threshold": self.quality.threshold(), "claims": self.quality.claims}
            if self.quality.enabled
            else None,
        }


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{origin}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping at the top level")
    return data


def preset_dict(name: str) -> dict[str, Any]:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    text = resources.files("fusionaudio.presets").joinpath(f"{name}.yaml").read_text("utf-8")
    return _read_yaml(text, f"preset {name}")


def _validate(data: dict[str, Any], origin: str) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{origin}: {where}: {first['msg']}{more}") from exc


def load_config(path: Path | None = None, preset: str | None = None) -> RunConfig:
    """The preset (default ``offline``), overridden by the file at ``path`` if given."""
    user: dict[str, Any] = {}
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
        user = _read_yaml(text, str(path))
    name = preset or str(user.get("preset", "offline"))
    merged = _deep_merge(preset_dict(name), user)
    merged["preset"] = name
    return _validate(merged, str(path) if path else f"preset {name}")
