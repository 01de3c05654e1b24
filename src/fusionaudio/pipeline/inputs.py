"""Turning the user's INPUT (a folder, a file, or a manifest) into clips.

Clip ids are readable and stable: the path relative to the input folder, the manifest's
``clip_id``, or the file name; a segment appends ``#<index>``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from fusionaudio.config import ConfigError, InputsConfig, MediaConfig
from fusionaudio.media.probe import probe
from fusionaudio.schema import Clip, Tag

MEDIA_SUFFIXES = frozenset(
    {
        ".wav",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".m4a",
        ".aac",
        ".mp4",
        ".mkv",
        ".webm",
        ".mov",
    }
)
MANIFEST_SUFFIXES = frozenset({".csv", ".jsonl"})


def _parse_tags(value: Any) -> tuple[Tag, ...]:
    """Tags as ``"Speech:0.9;Music"``, a list of labels, or a list of {label, confidence}."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("|", ";").split(";") if p.strip()]
        tags = []
        for part in parts:
            label, sep, conf = part.rpartition(":")
            if sep and _is_number(conf):
                tags.append(Tag(label.strip(), float(conf)))
            else:
                tags.append(Tag(part))
        return tuple(tags)
    if isinstance(value, dict):
        return tuple(Tag(str(k), None if v is None else float(v)) for k, v in value.items())
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                out.append(Tag.from_dict(item))
            else:
                out.append(Tag(str(item)))
        return tuple(out)
    raise ValueError(f"unreadable tags {value!r}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_manifest(path: Path, confine: bool) -> list[Clip]:
    rows: list[dict[str, Any]] = []
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.DictReader(f))
        else:
            with path.open(encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ConfigError(
                                f"{path}:{number}: not valid JSON ({exc.msg})"
                            ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc}") from exc
    clips: list[Clip] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        raw_path = row.get("path")
        if not raw_path:
            raise ConfigError(f"{path}: row {number} has no 'path'")
        media = Path(str(raw_path)).expanduser()
        root = None
        if not media.is_absolute():
            media = path.parent / media
            root = str(path.parent.resolve()) if confine else None
        clip_id = str(row.get("clip_id") or Path(str(raw_path)).as_posix())
        if clip_id in seen:
            raise ConfigError(f"{path}: row {number}: duplicate clip_id {clip_id!r}")
        seen.add(clip_id)
        try:
            tags = _parse_tags(row.get("tags"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{path}: row {number}: {exc}") from exc
        clips.append(Clip(clip_id=clip_id, source=str(media), tags=tags, root=root))
    return clips


def _walk(folder: Path) -> list[Path]:
    """Media files under ``folder``, never descending through a symlinked directory."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            p = Path(dirpath) / name
            if p.suffix.lower() in MEDIA_SUFFIXES and not name.startswith(".") and p.is_file():
                found.append(p)
    return sorted(found)


def outside_root(clip: Clip) -> str | None:
    """Why the clip's file may not be read (it resolves outside ``clip.root``), or None."""
    if clip.root is None:
        return None
    resolved = Path(clip.source).resolve()
    if resolved.is_relative_to(clip.root):
        return None
    return (
        f"outside the allowed folder {clip.root}: {clip.source} resolves to {resolved} "
        "(set inputs.allow_outside_root: true, or inputs.root, to allow it)"
    )


def _segment(clip: Clip, media: MediaConfig) -> list[Clip]:
    if outside_root(clip) is not None:
        return [clip]  # never probed; the loader refuses it
    try:
        duration = probe(Path(clip.source)).duration_s
    except Exception:
        return [clip]  # the loader will report why the file is unusable
    if duration is None or duration <= media.max_duration_s:
        return [clip]
    out = []
    count = int(-(-duration // media.max_duration_s))
    for index in range(count):
        start = index * media.max_duration_s
        end = min(duration, start + media.max_duration_s)
        if end - start < media.min_duration_s:
            break
        out.append(
            replace(
                clip,
                clip_id=f"{clip.clip_id}#{index:04d}",
                start_s=round(start, 3),
                end_s=round(end, 3),
                segment_index=index,
            )
        )
    return out


def discover(
    input_path: Path, media: MediaConfig, inputs: InputsConfig | None = None
) -> list[Clip]:
    """All clips named by ``input_path``; raises ConfigError when there is nothing to read.

    Each clip carries the folder its file must resolve inside (``Clip.root``); the loader
    refuses a file outside it, as that clip's error (``InputsConfig``).
    """
    inputs = inputs or InputsConfig()
    if not input_path.exists():
        raise ConfigError(f"input not found: {input_path}")
    confine = not inputs.allow_outside_root
    if input_path.is_dir():
        root = str(input_path.resolve()) if confine else None
        clips = [
            Clip(clip_id=p.relative_to(input_path).as_posix(), source=str(p), root=root)
            for p in _walk(input_path)
        ]
    elif input_path.suffix.lower() in MANIFEST_SUFFIXES:
        clips = _read_manifest(input_path, confine)
    else:
        clips = [Clip(clip_id=input_path.name, source=str(input_path))]
    if inputs.root is not None:
        if not inputs.root.is_dir():
            raise ConfigError(f"inputs.root is not a folder: {inputs.root}")
        fence = str(inputs.root.resolve())
        clips = [replace(clip, root=fence) for clip in clips]
    if not clips:
        raise ConfigError(f"no media files found in {input_path}")
    if media.long_clips == "segment":
        clips = [segment for clip in clips for segment in _segment(clip, media)]
    return clips
