"""Turning the user's INPUT (a folder, a file, or a manifest) into clips.

Clip ids are readable and stable: the path relative to the input folder, the manifest's
``clip_id``, or the file name; a segment appends ``#<index>``.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator
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


def _manifest_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, row) read one at a time, so that a manifest of millions of lines is
    never held whole."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            if path.suffix.lower() == ".csv":
                yield from enumerate(csv.DictReader(f), 1)
                return
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {path}: {exc}") from exc


def _manifest_clips(path: Path, confine: bool) -> Iterator[Clip]:
    folder = path.parent
    root = str(folder.resolve()) if confine else None
    for number, row in _manifest_rows(path):
        if not isinstance(row, dict):
            raise ConfigError(f"{path}: row {number} is not an object")
        raw_path = row.get("path")
        if not raw_path:
            raise ConfigError(f"{path}: row {number} has no 'path'")
        media = Path(str(raw_path)).expanduser()
        relative = not media.is_absolute()
        if relative:
            media = folder / media
        clip_id = str(row.get("clip_id") or Path(str(raw_path)).as_posix())
        try:
            tags = _parse_tags(row.get("tags"))
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(f"{path}: row {number}: {exc}") from exc
        yield Clip(clip_id=clip_id, source=str(media), tags=tags, root=root if relative else None)


def _walk(folder: Path) -> Iterator[Path]:
    """Media files under ``folder`` in a stable order (names sorted within each folder),
    never descending through a symlinked directory."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in MEDIA_SUFFIXES and not name.startswith(".") and p.is_file():
                yield p


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


def iter_clips(
    input_path: Path, media: MediaConfig, inputs: InputsConfig | None = None
) -> Iterator[Clip]:
    """The clips named by ``input_path``, one at a time: a folder or manifest of millions
    of files is never held whole. Raises ConfigError for an unreadable input, and when
    there is nothing to read; clip ids are not checked for uniqueness here (``discover``
    and the run's index do that).

    Each clip carries the folder its file must resolve inside (``Clip.root``); the loader
    refuses a file outside it, as that clip's error (``InputsConfig``).
    """
    inputs = inputs or InputsConfig()
    if not input_path.exists():
        raise ConfigError(f"input not found: {input_path}")
    if inputs.root is not None and not inputs.root.is_dir():
        raise ConfigError(f"inputs.root is not a folder: {inputs.root}")
    confine = not inputs.allow_outside_root
    clips: Iterable[Clip]
    if input_path.is_dir():
        root = str(input_path.resolve()) if confine else None
        clips = (
            Clip(clip_id=p.relative_to(input_path).as_posix(), source=str(p), root=root)
            for p in _walk(input_path)
        )
    elif input_path.suffix.lower() in MANIFEST_SUFFIXES:
        clips = _manifest_clips(input_path, confine)
    else:
        clips = [Clip(clip_id=input_path.name, source=str(input_path))]
    fence = None if inputs.root is None else str(inputs.root.resolve())
    found = 0
    for clip in clips:
        found += 1
        if fence is not None:
            clip = replace(clip, root=fence)
        if media.long_clips == "segment":
            yield from _segment(clip, media)
        else:
            yield clip
    if not found:
        raise ConfigError(f"no media files found in {input_path}")


def discover(
    input_path: Path, media: MediaConfig, inputs: InputsConfig | None = None
) -> list[Clip]:
    """All clips named by ``input_path``, as a list, with unique ids (ConfigError if not)."""
    clips = list(iter_clips(input_path, media, inputs))
    seen: set[str] = set()
    for clip in clips:
        if clip.clip_id in seen:
            raise ConfigError(f"{input_path}: duplicate clip_id {clip.clip_id!r}")
        seen.add(clip.clip_id)
    return clips
