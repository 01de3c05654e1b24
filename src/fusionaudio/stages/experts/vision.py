"""Vision: a timestamped, visual-only record of the clip's frames (video clips only).

The record never speaks of sound: the fusion stage decides whether a visual fact may
refine an ambiguous sound (the paper's "active correction"), and never lets it override
the audio.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from fusionaudio.backends.imagenet_vision import ImagenetFacesOcr
from fusionaudio.backends.openai_http import ServerSlots
from fusionaudio.media.frames import VideoFrame
from fusionaudio.schema import Cue
from fusionaudio.stages.base import VIDEO_FRAMES, Resources, Stage, StageInput
from fusionaudio.stages.experts.llm_backends import VisionLLM, openai_vision, qwen2_5_vl
from fusionaudio.stages.experts.prompts import load_prompt
from fusionaudio.stages.settings import (
    BatchSize,
    BuildContext,
    RoleConfig,
    ServerConfig,
    batch_size_for,
    known_name,
)

LOCAL = "imagenet_faces_ocr"
# backend name (``experts.vision.backend``) -> the vision LLM, not yet loaded; None: the
# local ImageNet classes, faces and OCR (``backends/imagenet_vision.py``), no prompt
VISION_BACKENDS: dict[str, Callable[[VisionConfig, ServerSlots | None], VisionLLM] | None] = {
    LOCAL: None,
    "openai_vision": openai_vision,
    "qwen2_5_vl": qwen2_5_vl,
}


class VisionConfig(RoleConfig):
    backend: str = LOCAL
    model: str | None = None
    server: ServerConfig | None = None
    device: str = "cpu"
    top_k: int = Field(3, ge=1)
    min_confidence: float = Field(0.1, ge=0, le=1)
    ocr: bool = True
    batch_size: BatchSize = None
    workers: int = Field(1, ge=1)
    threads: int = Field(1, ge=1)

    @field_validator("backend")
    @classmethod
    def _known(cls, name: str) -> str:
        return known_name("vision backend", name, VISION_BACKENDS)

    def build(self, context: BuildContext) -> VisionStage:
        return VisionStage(self, context.servers)


class VisionStage(Stage):
    name = "vision"
    needs = (VIDEO_FRAMES,)
    produces = "vision"
    prompt_version = 1

    def __init__(self, settings: VisionConfig, servers: ServerSlots | None = None) -> None:
        self.settings = settings
        self.servers = servers
        self.backend_name = settings.backend
        self.workers = settings.workers
        self.batch_size = batch_size_for(settings.batch_size, settings.device)
        self.resources = Resources(
            cpus=settings.threads, gpus=1.0 if settings.device.startswith("cuda") else 0.0
        )
        self._local: ImagenetFacesOcr | None = None
        self._llm: VisionLLM | None = None

    def _make_local(self) -> ImagenetFacesOcr:
        s = self.settings
        return ImagenetFacesOcr(s.threads, s.top_k, s.min_confidence, s.ocr)

    def _make_llm(self) -> VisionLLM:
        make = VISION_BACKENDS[self.backend_name]
        if make is None:
            raise ValueError(f"the {self.backend_name} backend is no LLM")
        return make(self.settings, self.servers)

    def fingerprint(self) -> dict[str, Any]:
        if self.backend_name == LOCAL:
            return {"backend": self.backend_name, "model": self._make_local().fingerprint()}
        return {
            "backend": self.backend_name,
            "model": self._make_llm().fingerprint(),
            "prompt": load_prompt("vision", self.prompt_version).identity,
        }

    def setup(self) -> None:
        if self.backend_name == LOCAL:
            self._local = self._make_local()
            self._local.setup()
        else:
            self._llm = self._make_llm()
            self._llm.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        clips = [_frames(item) for item in batch]
        if self._llm is not None:
            return self._generated(self._llm, clips)
        if self._local is None:
            raise RuntimeError("VisionStage.setup() was not called")
        cues = []
        for frames in clips:
            started = time.perf_counter()
            output = {"generated": False, **self._local.analyse(frames)}
            cues.append(self.cue(self._local, output, time.perf_counter() - started))
        return cues

    def _generated(self, llm: VisionLLM, clips: list[list[tuple[float, np.ndarray]]]) -> list[Cue]:
        """The batch's visual records in one call; each clip's time is its share."""
        started = time.perf_counter()
        prompt = load_prompt("vision", self.prompt_version)
        texts = llm.describe_frames_batch(clips, [prompt.text] * len(clips))
        elapsed = (time.perf_counter() - started) / max(1, len(clips))
        return [
            self.cue(
                llm,
                {"generated": True, "text": text, "frame_times_s": [t for t, _ in frames]},
                elapsed,
            ).with_prompt_version(prompt.identity)
            for frames, text in zip(clips, texts, strict=True)
        ]


def _frames(item: StageInput) -> list[tuple[float, np.ndarray]]:
    view = item.views[VIDEO_FRAMES]
    if not isinstance(view, list):
        raise TypeError("the video_frames view is not a list of frames")
    frames = [(f.time_s, f.rgb) for f in view if isinstance(f, VideoFrame)]
    if not frames:
        raise ValueError("no video frames could be decoded")
    return frames
