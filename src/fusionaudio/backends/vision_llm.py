"""Vision-language models that write the paper's timestamped, visual-only record of a
clip's frames: any OpenAI-compatible vision endpoint, or Qwen2.5-VL through transformers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fusionaudio.backends.openai_http import OpenAIClient, concurrently, jpeg_data_url
from fusionaudio.backends.transformers_loading import TransformersGenerator


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

    def describe_frames_batch(
        self, clips: Sequence[list[tuple[float, np.ndarray]]], prompts: Sequence[str]
    ) -> list[str]:
        """The batch's requests at once; the server client holds them to its limit."""
        return concurrently(
            lambda pair: self.describe_frames(*pair), list(zip(clips, prompts, strict=True))
        )


QWEN_SYSTEM = "You are a helpful assistant."


class Qwen25VLTransformers(TransformersGenerator):
    """Qwen2.5-VL (72B in the paper; any size of its class) from a folder or hub id.

    Built from the tokenizer and the image processor rather than the combined processor:
    transformers' Qwen2.5-VL processor insists on a video processor that needs
    torchvision, which frames-as-images never use. The chat format below is Qwen's own.
    """

    name = "qwen2_5_vl"
    default_max_new_tokens = 500

    def __init__(self, model: str, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(model, device, **kwargs)
        self._tokenizer: Any = None
        self._images: Any = None

    def setup(self) -> None:
        import torch
        from transformers import (
            AutoTokenizer,
            Qwen2_5_VLForConditionalGeneration,
            Qwen2VLImageProcessor,
        )

        self._tokenizer = AutoTokenizer.from_pretrained(
            self.model, local_files_only=self.local_files_only
        )
        self._images = Qwen2VLImageProcessor.from_pretrained(
            self.model, local_files_only=self.local_files_only
        )
        self._model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            self.model, local_files_only=self.local_files_only, dtype=getattr(torch, self.dtype)
        ).to(self.device)
        self._model.eval()
        self.revision = str(getattr(self._model.config, "_commit_hash", None) or "local")

    def _prompt(self, frames: list[tuple[float, np.ndarray]], grid: Any, prompt: str) -> str:
        merge = int(self._images.merge_size) ** 2
        parts = []
        for (time_s, _), thw in zip(frames, grid, strict=True):
            pads = "<|image_pad|>" * (int(thw.prod()) // merge)
            parts.append(f"Frame at {_stamp(time_s)}: <|vision_start|>{pads}<|vision_end|>")
        user = "\n".join(parts) + "\n" + prompt
        return (
            f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        )

    def describe_frames(self, frames: list[tuple[float, np.ndarray]], prompt: str) -> str:
        return self.describe_frames_batch([frames], [prompt])[0]

    def describe_frames_batch(
        self, clips: Sequence[list[tuple[float, np.ndarray]]], prompts: Sequence[str]
    ) -> list[str]:
        """One left-padded ``generate`` over the batch's clips (greedy). The model takes
        every image of the batch as one sequence of patches, in the order of the image
        tokens in its rows."""
        import torch

        if self._model is None:
            raise RuntimeError("Qwen25VLTransformers.setup() was not called")
        if not clips:
            return []
        pixels = self._images(
            images=[rgb for frames in clips for _, rgb in frames], return_tensors="pt"
        )
        grids = pixels["image_grid_thw"].split([len(frames) for frames in clips])
        texts = [
            self._prompt(frames, grid, prompt)
            for frames, grid, prompt in zip(clips, grids, prompts, strict=True)
        ]
        tokens = self._tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
        inputs = {
            "input_ids": tokens["input_ids"].to(self.device),
            "attention_mask": tokens["attention_mask"].to(self.device),
            "pixel_values": pixels["pixel_values"].to(self.device, dtype=self._model.dtype),
            "image_grid_thw": pixels["image_grid_thw"].to(self.device),
        }
        with torch.inference_mode():
            out = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
            )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [
            str(text).strip()
            for text in self._tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        ]
