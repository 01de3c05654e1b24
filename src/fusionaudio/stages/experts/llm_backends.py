"""Choosing an audio or vision language model backend by name (shared by the
description, music and vision roles)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from fusionaudio.backends.audio_llm import OpenAIAudioLLM, Qwen2AudioTransformers
from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.backends.vision_llm import OpenAIVisionLLM, Qwen25VLTransformers


@runtime_checkable
class AudioLLM(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def describe(self, signal_16k: np.ndarray, prompt: str) -> str: ...


@runtime_checkable
class VisionLLM(Protocol):
    name: str
    model_id: str
    revision: str

    def setup(self) -> None: ...

    def fingerprint(self) -> dict[str, str]: ...

    def describe_frames(self, frames: list[tuple[float, np.ndarray]], prompt: str) -> str: ...


AUDIO_LLM_BACKENDS = ("openai_audio", "qwen2_audio")
VISION_LLM_BACKENDS = ("openai_vision", "qwen2_5_vl")


def make_audio_llm(
    backend: str, model: str | None, server: ServerSettings | None, device: str
) -> AudioLLM:
    if backend == "openai_audio":
        if server is None:
            raise ValueError("the openai_audio backend needs a server (base_url, model)")
        return OpenAIAudioLLM(server.client())
    if backend == "qwen2_audio":
        if model is None:
            raise ValueError("the qwen2_audio backend needs model (a folder or hub id)")
        return Qwen2AudioTransformers(model, device=device)
    raise ValueError(
        f"unknown audio LLM backend {backend!r}; known: {', '.join(AUDIO_LLM_BACKENDS)}"
    )


def make_vision_llm(
    backend: str, model: str | None, server: ServerSettings | None, device: str
) -> VisionLLM:
    if backend == "openai_vision":
        if server is None:
            raise ValueError("the openai_vision backend needs a server (base_url, model)")
        return OpenAIVisionLLM(server.client())
    if backend == "qwen2_5_vl":
        if model is None:
            raise ValueError("the qwen2_5_vl backend needs model (a folder or hub id)")
        return Qwen25VLTransformers(model, device=device)
    raise ValueError(f"unknown vision backend {backend!r}; known: {', '.join(VISION_LLM_BACKENDS)}")
