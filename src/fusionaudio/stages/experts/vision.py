"""Vision: a timestamped, visual-only record of the clip's frames (video clips only).

The record never speaks of sound: the fusion stage decides whether a visual fact may
refine an ambiguous sound (the paper's "active correction"), and never lets it override
the audio.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fusionaudio.backends.imagenet_vision import ImagenetFacesOcr
from fusionaudio.backends.openai_http import ServerSettings
from fusionaudio.media.frames import VideoFrame
from fusionaudio.schema import Cue
from fusionaudio.stages.base import VIDEO_FRAMES, Resources, Stage, StageInput
from fusionaudio.stages.experts.llm_backends import VISION_LLM_BACKENDS, VisionLLM, make_vision_llm
from fusionaudio.stages.experts.prompts import load_prompt


class VisionStage(Stage):
    name = "vision"
    needs = (VIDEO_FRAMES,)
    produces = "vision"

    def __init__(
        self,
        backend: str = "imagenet_faces_ocr",
        model: str | None = None,
        server: ServerSettings | None = None,
        device: str = "cpu",
        top_k: int = 3,
        min_confidence: float = 0.1,
        ocr: bool = True,
        prompt_version: int = 1,
        batch_size: int = 1,
        workers: int = 1,
        threads: int = 1,
    ) -> None:
        if backend != "imagenet_faces_ocr" and backend not in VISION_LLM_BACKENDS:
            raise ValueError(f"unknown vision backend {backend!r}")
        self.backend_name = backend
        self.model = model
        self.server = server
        self.device = device
        self.top_k = top_k
        self.min_confidence = min_confidence
        self.ocr = ocr
        self.prompt_version = prompt_version
        self.batch_size = batch_size
        self.workers = workers
        self.threads = threads
        self.resources = Resources(cpus=threads, gpus=1.0 if device.startswith("cuda") else 0.0)
        self._local: ImagenetFacesOcr | None = None
        self._llm: VisionLLM | None = None

    def fingerprint(self) -> dict[str, Any]:
        if self.backend_name == "imagenet_faces_ocr":
            return {
                "backend": self.backend_name,
                "model": ImagenetFacesOcr(
                    self.threads, self.top_k, self.min_confidence, self.ocr
                ).fingerprint(),
            }
        return {
            "backend": self.backend_name,
            "model": make_vision_llm(
                self.backend_name, self.model, self.server, self.device
            ).fingerprint(),
            "prompt": load_prompt("vision", self.prompt_version).identity,
        }

    def setup(self) -> None:
        if self.backend_name == "imagenet_faces_ocr":
            self._local = ImagenetFacesOcr(self.threads, self.top_k, self.min_confidence, self.ocr)
            self._local.setup()
        else:
            self._llm = make_vision_llm(self.backend_name, self.model, self.server, self.device)
            self._llm.setup()

    def __call__(self, batch: Sequence[StageInput]) -> list[Cue]:
        cues = []
        for item in batch:
            started = time.perf_counter()
            view = item.views[VIDEO_FRAMES]
            if not isinstance(view, list):
                raise TypeError("the video_frames view is not a list of frames")
            frames = [(f.time_s, f.rgb) for f in view if isinstance(f, VideoFrame)]
            if not frames:
                raise ValueError("no video frames could be decoded")
            if self._local is not None:
                output = {"generated": False, **self._local.analyse(frames)}
                cues.append(self.cue(self._local, output, time.perf_counter() - started))
            elif self._llm is not None:
                prompt = load_prompt("vision", self.prompt_version)
                text = self._llm.describe_frames(frames, prompt.text)
                output = {"generated": True, "text": text, "frame_times_s": [t for t, _ in frames]}
                cue = self.cue(self._llm, output, time.perf_counter() - started)
                cues.append(cue.with_prompt_version(prompt.identity))
            else:
                raise RuntimeError("VisionStage.setup() was not called")
        return cues
