"""Content hashes: the cache key of a clip is its bytes, never its path."""

from __future__ import annotations

import hashlib
from pathlib import Path

from fusionaudio.media.deadline import Deadline

_BLOCK = 1 << 20


def hash_file(path: Path, deadline: Deadline | None = None) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            if deadline is not None:
                deadline.check()
            digest.update(block)
    return digest.hexdigest()
