"""Audio-text pairs from run folders and from the caption files people already have.

A run folder gives its captioned clips (status ``ok`` unless more are asked for), each
with the window its record names. A caption file is CSV or JSONL with an audio path
relative to the file and one or more captions per row: ``path,caption`` rows (several
rows per clip, AudioCaps-style, merge), ``file_name,caption_1..caption_5`` (Clotho),
``captions`` lists in JSONL, ``filename,category`` (ESC-50, labels only). Rows that name
no readable audio are counted and reported, never fatal.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

PATH_COLUMNS = ("path", "audio", "audio_path", "file_name", "filename", "file", "fname", "wav")
CAPTION_COLUMNS = ("caption", "captions", "text", "texts", "description")
LABEL_COLUMNS = ("class", "category", "label")
GROUP_COLUMNS = ("source_file", "group", "source")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus")


@dataclass(frozen=True)
class AudioTexts:
    """One clip (a file, or a window of one) and the texts that describe it."""

    key: str
    path: Path
    start_s: float
    end_s: float | None
    texts: tuple[str, ...]
    group: str  # the split unit: windows of one source file stay on one side
    label: str | None = None


@dataclass
class Loaded:
    items: list[AudioTexts]
    rows: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def clip_key(path: Path, start_s: float, end_s: float | None) -> str:
    end = "end" if end_s is None else f"{end_s:.3f}"
    return f"{path}#{start_s:.3f}-{end}"


def read_data(
    sources: Iterable[Path],
    statuses: frozenset[str] = frozenset({"ok"}),
    root: Path | None = None,
    allow_outside_root: bool = False,
    require_texts: bool = True,
) -> Loaded:
    """Every source merged: a clip named twice keeps all its texts once each."""
    merged: dict[str, AudioTexts] = {}
    loaded = Loaded(items=[])
    for source in sources:
        if source.is_dir():
            part = read_run(source, statuses)
        else:
            part = read_caption_file(source, root, allow_outside_root, require_texts)
        loaded.rows += part.rows
        loaded.skipped.extend(part.skipped)
        for item in part.items:
            _merge(merged, item)
    loaded.items = list(merged.values())
    return loaded


def _merge(merged: dict[str, AudioTexts], item: AudioTexts) -> None:
    """A clip named again (another row, another source) keeps all its texts, once each,
    and the first label it was given."""
    known = merged.get(item.key)
    if known is not None:
        texts = tuple(dict.fromkeys(known.texts + item.texts))
        item = replace(known, texts=texts, label=known.label or item.label)
    merged[item.key] = item


def read_run(run_dir: Path, statuses: frozenset[str] = frozenset({"ok"})) -> Loaded:
    results = run_dir / "results.jsonl"
    if not results.is_file():
        raise FileNotFoundError(f"{run_dir} has no results.jsonl (is it a finished run folder?)")
    loaded = Loaded(items=[])
    with results.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            loaded.rows += 1
            caption = (record.get("caption") or {}).get("text")
            where = f"{run_dir.name}:{record.get('clip_id')}"
            if record.get("status") not in statuses:
                loaded.skipped.append((where, f"status {record.get('status')}"))
                continue
            if not caption:
                loaded.skipped.append((where, "no caption"))
                continue
            media = record.get("media") or {}
            path = Path(record["source"])
            start = float(media.get("window_start_s") or 0.0)
            end = media.get("window_end_s")
            end_s = None if end is None else float(end)
            loaded.items.append(
                AudioTexts(clip_key(path, start, end_s), path, start, end_s, (caption,), str(path))
            )
    return loaded


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    if path.suffix.lower() in (".jsonl", ".json"):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    else:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        with path.open(encoding="utf-8", newline="") as f:
            yield from csv.DictReader(f, delimiter=delimiter)


def _first(row: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def _texts(row: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    for name in CAPTION_COLUMNS:
        value = row.get(name)
        if isinstance(value, list):
            texts.extend(str(v) for v in value)
        elif value not in (None, ""):
            texts.append(str(value))
    numbered = sorted(
        (k for k in row if k.startswith("caption_") and k[8:].isdigit()), key=lambda k: int(k[8:])
    )
    texts.extend(str(row[k]) for k in numbered if row[k] not in (None, ""))
    return [t.strip() for t in texts if t.strip()]


def _candidates(folder: Path, row: dict[str, Any]) -> list[Path]:
    name = _first(row, PATH_COLUMNS)
    if name is not None:
        name = str(name)
        # ESC-50 keeps its CSV in meta/ and the audio in audio/
        return [folder / name, folder / "audio" / name, folder.parent / "audio" / name]
    youtube = _first(row, ("youtube_id", "ytid"))
    if youtube is not None:  # AudioCaps: files are named by their YouTube id
        found: list[Path] = []
        for where in (folder, folder / "audio"):
            found += [p for p in sorted(where.glob(f"*{youtube}*")) if p.suffix in AUDIO_SUFFIXES]
        return found
    return []


def read_caption_file(
    path: Path,
    root: Path | None = None,
    allow_outside_root: bool = False,
    require_texts: bool = True,
) -> Loaded:
    """Audio paths resolve against the file's folder and must stay inside ``root`` (the
    file's folder unless given) unless ``allow_outside_root``."""
    folder = path.parent
    inside = (root or folder).resolve()
    merged: dict[str, AudioTexts] = {}
    loaded = Loaded(items=[])
    for number, row in enumerate(_rows(path), 1):
        loaded.rows += 1
        where = f"{path.name}:{number}"
        candidates = _candidates(folder, row)
        if not candidates:
            loaded.skipped.append((where, f"no audio column (one of {', '.join(PATH_COLUMNS)})"))
            continue
        audio = next((c for c in candidates if c.is_file()), None)
        if audio is None:
            loaded.skipped.append((where, f"audio not found: {candidates[0]}"))
            continue
        resolved = audio.resolve()
        if not allow_outside_root and not resolved.is_relative_to(inside):
            loaded.skipped.append((where, f"{audio} is outside {inside} (widen it with --root)"))
            continue
        texts = _texts(row)
        if require_texts and not texts:
            loaded.skipped.append((where, "no caption"))
            continue
        start = float(row.get("start_s") or 0.0)
        end = row.get("end_s")
        end_s = None if end in (None, "") else float(end)
        key = clip_key(resolved, start, end_s)
        label = _first(row, LABEL_COLUMNS)
        group = str(_first(row, GROUP_COLUMNS) or resolved)
        item = AudioTexts(
            key, resolved, start, end_s, tuple(texts), group, None if label is None else str(label)
        )
        _merge(merged, item)
    loaded.items = list(merged.values())
    return loaded


def read_classes(path: Path) -> dict[str, str]:
    """``class,description`` -> {class: prompt}; the class name is the prompt when absent."""
    classes: dict[str, str] = {}
    for row in _rows(path):
        name = _first(row, (*LABEL_COLUMNS, "name"))
        if name is None:
            raise ValueError(f"{path}: a row has no class column")
        description = row.get("description") or row.get("prompt")
        classes[str(name)] = str(description or str(name).replace("_", " "))
    return classes


def split_by_group(
    items: list[AudioTexts], val_fraction: float, seed: int
) -> tuple[list[AudioTexts], list[AudioTexts]]:
    """(train, validation): whole groups go to validation, in an order fixed by the seed
    and the group names alone, until it holds ``val_fraction`` of the clips."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError("val_fraction must be between 0 and 1")
    groups: dict[str, list[AudioTexts]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    if len(groups) < 2:
        raise ValueError("need clips from at least two source files to hold some out")
    order = sorted(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).hexdigest())
    wanted = max(1, round(val_fraction * len(items)))
    held: set[str] = set()
    count = 0
    for group in order[:-1]:  # at least one group trains
        if count >= wanted:
            break
        held.add(group)
        count += len(groups[group])
    train = [item for item in items if item.group not in held]
    val = [item for item in items if item.group in held]
    return train, val
