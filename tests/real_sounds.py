"""The labelled real recordings in ``../shared/data/sounds`` (beside the repository, in
development and in CI): the ground truth that tests and benchmarks measure against.
``FUSIONAUDIO_SOUNDS`` names another folder of the same layout, for a checkout that does
not sit beside ``shared/``."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOUNDS = Path(
    os.environ.get("FUSIONAUDIO_SOUNDS")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"
)


def missing_sounds(root: Path = SOUNDS) -> str | None:
    """Why the recordings cannot be read, in words a new contributor can act on; None
    when they can. A test that needs them fails with this, instead of a bare
    FileNotFoundError deep in a fixture."""
    if (root / "labels.jsonl").is_file():
        return None
    return (
        f"the labelled real recordings are not at {root}: the tests expect the repository "
        "to sit beside a shared/ folder holding data/sounds/labels.jsonl and its clips, "
        "or FUSIONAUDIO_SOUNDS naming such a folder"
    )


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
    if (why := missing_sounds(root)) is not None:
        raise FileNotFoundError(why)
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
