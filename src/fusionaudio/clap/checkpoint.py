"""Checkpoint folders: which family reads them, and their identity by content."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from fusionaudio.clap.families import FAMILIES
from fusionaudio.clap.model import MARKER, DualEncoder

TRAINING_DIR = "training"  # inside a checkpoint folder: resumable state and metrics, not the model


class NotACheckpoint(ValueError):
    """The folder is neither a checkpoint this project wrote nor a transformers CLAP folder."""


def family_of(folder: Path) -> str:
    marker = folder / MARKER
    if marker.is_file():
        family = str(json.loads(marker.read_text(encoding="utf-8"))["family"])
        if family not in FAMILIES:
            raise NotACheckpoint(f"{folder}: unknown family {family!r}; known: {sorted(FAMILIES)}")
        return family
    config = folder / "config.json"
    if (
        config.is_file()
        and json.loads(config.read_text(encoding="utf-8")).get("model_type") == "clap"
    ):
        return "paper"
    raise NotACheckpoint(
        f"{folder} is not a CLAP checkpoint (no {MARKER}, no transformers CLAP config.json)"
    )


def load_checkpoint(folder: Path, device: str = "cpu") -> DualEncoder:
    return FAMILIES[family_of(folder)].from_pretrained(folder, device=device)


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def content_fingerprint(folder: Path) -> str:
    """sha256 over every file's relative path and content hash (memoised by path, mtime and
    size): retraining into the same folder changes it, so cached scores are recomputed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if relative.name == "model_card.md" or relative.parts[0] == TRAINING_DIR:
            continue
        stat = path.stat()
        digest.update(relative.as_posix().encode())
        digest.update(_file_digest(str(path), stat.st_mtime_ns, stat.st_size).encode())
    return digest.hexdigest()[:24]
