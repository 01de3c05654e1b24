"""Whisper (large-v3 in the paper) through Hugging Face transformers.

``model`` is a local folder or a hub id; with ``local_files_only`` (the default) nothing
is fetched, so a hub id works only where it is already in the local HF cache.

Every clip is transcribed whole, with timestamps, by transformers' own sequential
decoding (Whisper's algorithm: decode a 30 s window, move to the last timestamp the
model predicted, decode the next window), so a 60 s clip is not cut at 30 s. Clips up to
30 s are padded to one window as Whisper was trained; longer ones are given whole, and
``transcribe_batch`` decodes several clips in one padded ``generate`` call, with each
clip's own frame count as its attention mask, so every clip gets the tokens it would get
alone. Decoding is greedy, with no temperature fallback and no conditioning on the
previous window (as the faster-whisper backend), so results do not depend on the batch.

Each segment carries its own average token log-probability (from the decoding scores,
its timestamp tokens included, as Whisper counts them) for the hallucination screen.
Whisper's no-speech probability is not produced by transformers' decoding without
changing it (its no-speech detection skips windows), so it is None here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionaudio.backends.transformers_loading import TransformersGenerator, load_pretrained

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # one Whisper window: 3000 feature frames


class TransformersWhisper(TransformersGenerator):
    name = "transformers_whisper"
    default_max_new_tokens = 220  # per 30 s window; Whisper's own limit is 224

    def __init__(
        self, model: str, device: str = "cpu", language: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(model, device, **kwargs)
        self.language = language
        self._multilingual = False
        self._language_of: dict[int, str] = {}

    def fingerprint(self) -> dict[str, str]:
        return {
            **super().fingerprint(),
            "language": str(self.language),
            "decoding": "sequential-timestamps.v1",
        }

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
        tokenizer = self._processor.tokenizer
        config = self._model.generation_config
        if getattr(config, "no_timestamps_token_id", None) is None:
            # a checkpoint saved without Whisper's generation settings: the timestamp
            # tokens are still in its vocabulary, so take the id from the tokenizer
            token = tokenizer.convert_tokens_to_ids("<|notimestamps|>")
            if isinstance(token, int) and token != tokenizer.unk_token_id:
                config.no_timestamps_token_id = token
        if getattr(config, "no_timestamps_token_id", None) is None:
            raise ValueError(
                f"{self.model}: no <|notimestamps|> token in its tokenizer or generation "
                "config; segments and clips over 30 s need Whisper's timestamp tokens"
            )
        self._multilingual = bool(getattr(config, "is_multilingual", True)) and bool(
            getattr(config, "task_to_id", None)
        )
        lang_to_id = getattr(config, "lang_to_id", None) or {}
        self._language_of = {int(i): str(t)[2:-2] for t, i in lang_to_id.items()}

    def transcribe(self, signal_16k: np.ndarray) -> dict[str, Any]:
        return self.transcribe_batch([signal_16k])[0]

    def features(self, signal_16k: np.ndarray) -> np.ndarray:
        """Log-mel features (mel bins x frames): one padded 30 s window for a clip up to
        30 s, every frame of a longer one."""
        signal = np.asarray(signal_16k, dtype=np.float32)
        extractor = self._processor.feature_extractor
        device = self.device if self.device.startswith("cuda") else "cpu"
        if len(signal) <= WINDOW_SAMPLES:
            out = extractor(signal, sampling_rate=SAMPLE_RATE, return_tensors="np", device=device)
        else:
            out = extractor(
                signal,
                sampling_rate=SAMPLE_RATE,
                truncation=False,
                padding="longest",
                return_attention_mask=True,
                return_tensors="np",
                device=device,
            )
        features: np.ndarray = out.input_features[0]
        return features

    def transcribe_batch(self, signals: list[np.ndarray]) -> list[dict[str, Any]]:
        """One ``generate`` call for every clip; results in the order given."""
        import torch

        if self._model is None:
            raise RuntimeError("TransformersWhisper.setup() was not called")
        if not signals:
            return []
        features = [self.features(s) for s in signals]
        frames = [f.shape[-1] for f in features]
        longest = max(frames)
        window = self._model.config.max_source_positions * 2  # 3000 frames
        batch = np.zeros((len(features), features[0].shape[0], longest), np.float32)
        mask = np.zeros((len(features), longest), np.int64)
        for i, f in enumerate(features):
            batch[i, :, : f.shape[-1]] = f
            mask[i, : f.shape[-1]] = 1
        inputs = torch.from_numpy(batch).to(self.device, dtype=self._model.dtype)
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "return_dict_in_generate": True,
            "output_scores": True,
            "do_sample": False,
            "num_beams": 1,
            "return_timestamps": True,
            "return_segments": True,
            "condition_on_prev_tokens": False,
        }
        if self.language is not None:
            kwargs["language"] = self.language
        if self._multilingual:
            kwargs["task"] = "transcribe"  # never Whisper's translation into English
        if longest > window:
            # long-form: each clip is decoded up to its own last frame
            kwargs["attention_mask"] = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            out = self._model.generate(inputs, **kwargs)
        durations = [len(s) / SAMPLE_RATE for s in signals]
        return [
            self._from_segments(segments, duration)
            for segments, duration in zip(out["segments"], durations, strict=True)
        ]

    def _language(self, prompt: list[int]) -> str | None:
        for token in prompt:
            if token in self._language_of:
                return self._language_of[token]
        tokenizer = self._processor.tokenizer
        for t in tokenizer.convert_ids_to_tokens(prompt):
            if t and t.startswith("<|") and len(t) in (6, 7) and t[2:-2].isalpha():
                return str(t[2:-2])
        return self.language

    def _from_segments(self, segments: list[dict[str, Any]], duration: float) -> dict[str, Any]:
        import torch

        tokenizer = self._processor.tokenizer
        items = []
        language = None
        for segment in segments:
            result = segment["result"]
            sequence = result["sequences"]
            scores = result.get("scores")
            offset = len(sequence) - len(scores) if scores is not None else None
            if language is None and offset is not None:
                language = self._language(sequence[:offset].tolist())
            text = tokenizer.decode(segment["tokens"], skip_special_tokens=True).strip()
            if not text:
                continue
            avg_logprob = None
            if scores is not None and offset is not None:
                start, end = segment["idxs"]
                positions = range(max(start, offset), min(end, len(sequence)))
                if len(positions):
                    step = torch.stack([scores[p - offset] for p in positions]).float()
                    chosen = sequence[list(positions)].to(step.device)
                    logprobs = torch.log_softmax(step, dim=-1).gather(-1, chosen[:, None])
                    avg_logprob = round(float(logprobs.mean()), 4)
            start_s = min(max(float(segment["start"]), 0.0), duration)
            end_s = min(max(float(segment["end"]), start_s), duration)
            items.append(
                {
                    "start_s": round(start_s, 2),
                    "end_s": round(end_s, 2),
                    "text": text,
                    "avg_logprob": avg_logprob,
                    "no_speech_prob": None,
                }
            )
        return {
            "text": " ".join(s["text"] for s in items).strip(),
            "language": language if language is not None else self.language,
            "language_probability": None,
            "segments": items,
        }
