"""The audio and vision language model backends, built from a role's section; the
description, music and vision roles name them in their registries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from fusionaudio.backends.audio_llm import OpenAIAudioLLM, Qwen2AudioTransformers
from fusionaudio.backends.openai_http import ServerSettings, ServerSlots
from fusionaudio.backends.vision_llm import OpenAIVisionLLM, Qwen25VLTransformers
from fusionaudio.stages.settings import ServerConfig, server_settings


@runtime_checkable
class AudioLLM(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def describe(self, signal_16k: np.ndarray, prompt: str) -> str: ...

    def describe_batch(
        self, signals: Sequence[np.ndarray], prompts: Sequence[str]
    ) -> list[str]: ...


@runtime_checkable
class VisionLLM(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def describe_frames(self, frames: list[tuple[float, np.ndarray]], prompt: str) -> str: ...

    def describe_frames_batch(
        self, clips: Sequence[list[tuple[float, np.ndarray]]], prompts: Sequence[str]
    ) -> list[str]: ...


class LLMRoleSettings(Protocol):
    """What a role that may ask an LLM configures (audio_description, music, vision)."""

    @property
    def model(self) -> str | None: ...

    @property
    def server(self) -> ServerConfig | None: ...

    @property
    def device(self) -> str: ...


def _server(backend: str, settings: LLMRoleSettings) -> ServerSettings:
    server = server_settings(settings.server)
    if server is None:
        raise ValueError(f"the {backend} backend needs a server (base_url, model)")
    return server


def _model(backend: str, settings: LLMRoleSettings) -> str:
    if settings.model is None:
        raise ValueError(f"the {backend} backend needs model (a folder or hub id)")
    return settings.model


def openai_audio(settings: LLMRoleSettings, servers: ServerSlots | None = None) -> AudioLLM:
    return OpenAIAudioLLM(_server("openai_audio", settings).client(servers))


def qwen2_audio(settings: LLMRoleSettings, servers: ServerSlots | None = None) -> AudioLLM:
    return Qwen2AudioTransformers(_model("qwen2_audio", settings), device=settings.device)


def openai_vision(settings: LLMRoleSettings, servers: ServerSlots | None = None) -> VisionLLM:
    return OpenAIVisionLLM(_server("openai_vision", settings).client(servers))


def qwen2_5_vl(settings: LLMRoleSettings, servers: ServerSlots | None = None) -> VisionLLM:
    return Qwen25VLTransformers(_model("qwen2_5_vl", settings), device=settings.device)
