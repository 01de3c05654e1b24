"""Vision-language models that write the paper's timestamped, visual-only record of a
clip's frames: any OpenAI-compatible vision endpoint, or Qwen2.5-VL through transformers."""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_version
from fusionaudio.backends.openai_http import OpenAIClient, jpeg_data_url


def _stamp(time_s: float) -> str:
    minutes, seconds = divmod(round(time_s), 60)
    return f"{minutes:02d}:{seconds:02d}"


class OpenAIVisionLLM:
    name = "openai_vision"

    def __init__(self, client: OpenAIClient, max_tokens: int = 500) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.model_id = client.model
        self.revision = f"server:{client.base_url}"

    def fingerprint(self) -> dict[str, str]:
        return {"model": self.client.model, "max_tokens": str(self.max_tokens)}

    def setup(self) -> None:
        pass

    def describe_frames(self, frames: list[tuple[float, np.ndarray]], prompt: str) -> str:
        content: list[dict[str, Any]] = []
        for time_s, rgb in frames:
            content.append({"type": "text", "text": f"Frame at {_stamp(time_s)}:"})
            content.append({"type": "image_url", "image_url": {"url": jpeg_data_url(rgb)}})
        content.append({"type": "text", "text": prompt})
        messages = [{"role": "user", "content": content}]
        return self.client.chat(messages, max_tokens=self.max_tokens).text.strip()


class Qwen25VLTransformers:
    """Qwen2.5-VL (72B in the paper; any size of its class) from a folder or hub id."""

    name = "qwen2_5_vl"

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        local_files_only: bool = True,
        max_new_tokens: int = 500,
    ) -> None:
        self.model = model
        self.device = device
        self.dtype = dtype
        self.local_files_only = local_files_only
        self.max_new_tokens = max_new_tokens
        self.model_id = model
        self.revision = "not-loaded"
        self._processor: Any = None
        self._model: Any = None

    def fingerprint(self) -> dict[str, str]:
        return {
            "package": f"transformers=={package_version('transformers')}",
            "model": self.model,
            "dtype": self.dtype,
            "max_new_tokens": str(self.max_new_tokens),
        }

    def setup(self) -> None:
        import torch
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        self._processor = AutoProcessor.from_pretrained(
            self.model, local_files_only=self.local_files_only
        )
        self._model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            self.model, local_files_only=self.local_files_only, dtype=getattr(torch, self.dtype)
        ).to(self.device)
        self._model.eval()
        self.revision = str(getattr(self._model.config, "_commit_hash", None) or "local")

    def describe_frames(self, frames: list[tuple[float, np.ndarray]], prompt: str) -> str:
        import torch
        from PIL import Image

        if self._model is None:
            raise RuntimeError("Qwen25VLTransformers.setup() was not called")
        content: list[dict[str, Any]] = []
        images = []
        for time_s, rgb in frames:
            content.append({"type": "text", "text": f"Frame at {_stamp(time_s)}:"})
            content.append({"type": "image"})
            images.append(Image.fromarray(rgb))
        content.append({"type": "text", "text": prompt})
        text = self._processor.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        inputs = self._processor(text=[text], images=images, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
            )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        return str(self._processor.decode(new_tokens, skip_special_tokens=True)).strip()
