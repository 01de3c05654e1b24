"""Writes that are either complete or absent: write a temporary file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: Path) -> int:
    """Delete ``.*.tmp`` files a killed process left behind; they are never complete."""
    removed = 0
    if not folder.is_dir():
        return 0
    for tmp in folder.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed
