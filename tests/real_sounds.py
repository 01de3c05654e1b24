"""The labelled real recordings in ``../shared/data/sounds`` (beside the repository, in
development and in CI): the ground truth that tests and benchmarks measure against."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOUNDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"


@dataclass(frozen=True)
class LabelledClip:
    path: Path
    label: str
    sources: tuple[str, ...]
    caption: str
    has_speech: bool
    speech_text: str | None
    speech_language: str | None
    has_music: bool
    raw: dict[str, object]


def labelled_clips(root: Path = SOUNDS) -> list[LabelledClip]:
    """Every clip in ``labels.jsonl``, in file order."""
    clips = []
    with (root / "labels.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            clips.append(
                LabelledClip(
                    path=root / row["path"],
                    label=row["class"],
                    sources=tuple(row.get("sources", [])),
                    caption=row["caption"],
                    has_speech=bool(row.get("has_speech")),
                    speech_text=row.get("speech_text"),
                    speech_language=row.get("speech_language"),
                    has_music=bool(row.get("has_music")),
                    raw=row,
                )
            )
    return clips


def clips_of(label: str, root: Path = SOUNDS) -> list[LabelledClip]:
    return [clip for clip in labelled_clips(root) if clip.label == label]


def decode_16k(path: Path) -> np.ndarray:
    """A recording as the experts hear it: decoded and resampled by the pipeline's own
    media code, mono 16 kHz."""
    from fusionaudio.media.decode import Window, decode_audio

    audio = decode_audio(path, Window(0.0, None), timeout_s=30).audio
    samples: np.ndarray = audio.mono().resample(16_000).samples[0]
    return samples
