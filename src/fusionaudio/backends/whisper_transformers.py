"""Whisper (large-v3 in the paper) through Hugging Face transformers.

``model`` is a local folder or a hub id; with ``local_files_only`` (the default) nothing
is fetched, so a hub id works only where it is already in the local HF cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionaudio.backends.transformers_loading import TransformersGenerator, load_pretrained


class TransformersWhisper(TransformersGenerator):
    name = "transformers_whisper"
    default_max_new_tokens = 220

    def __init__(
        self, model: str, device: str = "cpu", language: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model, device, **kwargs)
        self.language = language

    def fingerprint(self) -> dict[str, str]:
        return {**super().fingerprint(), "language": str(self.language)}

    def setup(self) -> None:
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self._processor, self._model, self.revision = load_pretrained(
            WhisperForConditionalGeneration,
            WhisperProcessor,
            self.model,
            self.device,
            self.dtype,
            self.local_files_only,
        )

    def transcribe(self, signal_16k: np.ndarray) -> dict[str, Any]:
        import torch

        if self._model is None:
            raise RuntimeError("TransformersWhisper.setup() was not called")
        features = self._processor(
            np.asarray(signal_16k, dtype=np.float32), sampling_rate=16_000, return_tensors="pt"
        ).input_features.to(self.device, dtype=self._model.dtype)
        kwargs: dict[str, Any] = {"max_new_tokens": self.max_new_tokens}
        if self.language is not None:
            kwargs.update(language=self.language, task="transcribe")
        with torch.inference_mode():
            out = self._model.generate(
                features, return_dict_in_generate=True, output_scores=True, **kwargs
            )
        sequence = out.sequences[0]
        scores = self._model.compute_transition_scores(
            out.sequences, out.scores, normalize_logits=True
        )
        avg_logprob = float(scores[0].float().mean()) if scores.numel() else 0.0
        tokenizer = self._processor.tokenizer
        special = tokenizer.convert_ids_to_tokens(sequence.tolist())
        language = next(
            (
                t[2:-2]
                for t in special
                if t and t.startswith("<|") and len(t) in (6, 7) and t[2:-2].isalpha()
            ),
            self.language,
        )
        text = tokenizer.decode(sequence, skip_special_tokens=True).strip()
        duration = len(signal_16k) / 16_000
        return {
            "text": text,
            "language": language,
            "language_probability": None,
            "segments": [
                {
                    "start_s": 0.0,
                    "end_s": round(duration, 2),
                    "text": text,
                    "avg_logprob": round(avg_logprob, 4),
                    "no_speech_prob": None,
                }
            ],
        }
