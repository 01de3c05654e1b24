"""Audio language models that describe a clip from a text prompt (the paper's GAMA and
OpenMu roles): any OpenAI-compatible server that accepts audio, or Qwen2-Audio through
transformers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fusionaudio.backends.openai_http import OpenAIClient, concurrently, wav_base64
from fusionaudio.backends.transformers_loading import TransformersGenerator, load_pretrained


class OpenAIAudioLLM:
    """Sends the clip as an ``input_audio`` part (16 kHz WAV) with the prompt."""

    name = "openai_audio"

    def __init__(self, client: OpenAIClient, max_tokens: int = 300) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.model_id = client.model
        self.revision = f"server:{client.base_url}"

    def fingerprint(self) -> dict[str, str]:
        return {"model": self.client.model, "max_tokens": str(self.max_tokens)}

    def setup(self) -> None:
        pass

    def describe(self, signal_16k: np.ndarray, prompt: str) -> str:
        messages = [
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "input_audio": {"data": wav_base64(signal_16k, 16_000), "format": "wav"},
                    },
                    {"type": "text", "text": prompt},
                ],
            }
        ]
        return self.client.chat(messages, max_tokens=self.max_tokens).text.strip()

    def describe_batch(self, signals: Sequence[np.ndarray], prompts: Sequence[str]) -> list[str]:
        """The batch's requests at once; the server client holds them to its limit."""
        return concurrently(
            lambda pair: self.describe(*pair), list(zip(signals, prompts, strict=True))
        )


class Qwen2AudioTransformers(TransformersGenerator):
    """Qwen2-Audio-7B-Instruct (or any checkpoint of its class) from a folder or hub id."""

    name = "qwen2_audio"
    default_max_new_tokens = 300

    def setup(self) -> None:
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        self._processor, self._model, self.revision = load_pretrained(
            Qwen2AudioForConditionalGeneration,
            AutoProcessor,
            self.model,
            self.device,
            self.dtype,
            self.local_files_only,
        )

    def describe(self, signal_16k: np.ndarray, prompt: str) -> str:
        return self.describe_batch([signal_16k], [prompt])[0]

    def describe_batch(self, signals: Sequence[np.ndarray], prompts: Sequence[str]) -> list[str]:
        """One left-padded ``generate`` over the batch's clips (greedy)."""
        import torch

        if self._model is None:
            raise RuntimeError("Qwen2AudioTransformers.setup() was not called")
        if not signals:
            return []
        texts = [
            self._processor.apply_chat_template(
                [
                    {
                        "role": "user",
                        "content": [
                            {"type": "audio", "audio_url": "clip.wav"},
                            {"type": "text", "text": prompt},
                        ],
                    }
                ],
                add_generation_prompt=True,
                tokenize=False,
            )
            for prompt in prompts
        ]
        self._processor.tokenizer.padding_side = "left"  # generation continues every row
        inputs = self._processor(
            text=texts,
            audio=[np.asarray(x, dtype=np.float32) for x in signals],
            sampling_rate=16_000,
            return_tensors="pt",
            padding=True,
        ).to(self.device)
        with torch.inference_mode():
            out = self._model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, do_sample=False
            )
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return [
            str(text).strip()
            for text in self._processor.batch_decode(new_tokens, skip_special_tokens=True)
        ]
