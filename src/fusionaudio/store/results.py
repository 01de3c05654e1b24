"""Result shards and the assembled ``results.jsonl`` / ``results.parquet``.

Finished clip records are buffered and written as numbered shards (temporary name,
then rename), so a shard on disk is always complete. Resuming reads the shards to
learn which clips are done; assembling keeps, for every current input clip, its
latest record: every clip exactly once, however often the run was interrupted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionaudio.schema.arrow import RESULT_SCHEMA, result_row
from fusionaudio.store.atomic import atomic_write_text

_SHARD = re.compile(r"^part-(\d{6})\.jsonl$")
DUPLICATE_WARNING = "duplicate caption: identical to the caption of clip"


@dataclass(frozen=True)
class Position:
    """Where an input clip's newest record is, and which clip keeps its caption when
    several clips say it word for word (None: the caption is unique, or there is none)."""

    shard: int
    line: int
    clip_id: str
    caption_owner: str | None


def shard_name(number: int) -> str:
    return f"part-{number:06d}.jsonl"


def is_shard_name(name: str) -> bool:
    return _SHARD.match(name) is not None


def shard_files(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SHARD.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


class ShardWriter:
    """Buffers records and writes them as complete shards, by count or by age."""

    def __init__(
        self,
        folder: Path,
        max_records: int,
        max_age_s: float,
        on_shard: Callable[[Path], None] | None = None,
    ) -> None:
        self.folder = folder
        self.on_shard = on_shard
        self.max_records = max_records
        self.max_age_s = max_age_s
        folder.mkdir(parents=True, exist_ok=True)
        existing = shard_files(folder)
        self._next = existing[-1][0] + 1 if existing else 1
        self._buffer: list[str] = []
        self._oldest = 0.0

    def add(self, record: dict[str, Any]) -> None:
        if not self._buffer:
            self._oldest = time.monotonic()
        self._buffer.append(json.dumps(record, ensure_ascii=False))
        if len(self._buffer) >= self.max_records or (
            time.monotonic() - self._oldest >= self.max_age_s
        ):
            self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        path = self.folder / shard_name(self._next)
        atomic_write_text(path, "\n".join(self._buffer) + "\n")
        self._next += 1
        self._buffer = []
        if self.on_shard is not None:
            self.on_shard(path)


def caption_digest(record: dict[str, Any]) -> bytes | None:
    """16 bytes that are equal when two captions read the same (case and spacing folded)."""
    text = (record.get("caption") or {}).get("text")
    if not text:
        return None
    folded = " ".join(str(text).lower().split())
    return hashlib.blake2b(folded.encode(), digest_size=16).digest()


def mark_duplicate(record: dict[str, Any], owner: str | None) -> bool:
    """Add the duplicate-caption warning to a record whose caption another clip (``owner``,
    the smallest id among those that say it) keeps."""
    if owner is None or owner == record["clip_id"]:
        return False
    record["warnings"] = [
        *record.get("warnings", []),
        f"{DUPLICATE_WARNING} {owner!r}",
    ]
    return True


def assemble(
    shard_folder: Path, positions: Iterable[Position], jsonl_path: Path, parquet_path: Path
) -> int:
    """Write the records at ``positions`` (each input clip's newest, in shard and line
    order, from ``RunIndex.positions``), streaming shard by shard.

    Memory holds one shard's line and one Parquet row group, never all records nor one
    entry per clip, so assembling a million-clip run stays flat. Records come in
    completion order. Captions said word for word by several clips are marked here, on
    every clip but the owner (the stage cannot know other clips).
    """
    tmp_jsonl = jsonl_path.with_name(f".{jsonl_path.name}.{os.getpid()}.tmp")
    tmp_parquet = parquet_path.with_name(f".{parquet_path.name}.{os.getpid()}.tmp")
    written = 0
    wanted = iter(positions)
    writer = pq.ParquetWriter(str(tmp_parquet), RESULT_SCHEMA)
    try:
        with tmp_jsonl.open("w", encoding="utf-8") as out:
            group: list[dict[str, Any]] = []
            position = next(wanted, None)
            while position is not None:
                shard = position.shard
                path = shard_folder / shard_name(shard)
                with path.open("rb") as f:
                    for line_no, raw in enumerate(f):
                        if position is None or position.shard != shard:
                            break
                        if line_no != position.line:
                            continue
                        line = raw.decode("utf-8").rstrip("\r\n")
                        record = json.loads(line)
                        if record["clip_id"] != position.clip_id:
                            raise RuntimeError(f"{path}:{line_no} is not the indexed record")
                        if mark_duplicate(record, position.caption_owner):
                            line = json.dumps(record, ensure_ascii=False)
                        out.write(line + "\n")
                        group.append(result_row(record))
                        written += 1
                        if len(group) >= 1024:
                            writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
                            group = []
                        position = next(wanted, None)
                if position is not None and position.shard == shard:
                    raise RuntimeError(f"{path} is shorter than indexed")
            if group:
                writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
            out.flush()
            os.fsync(out.fileno())
    finally:
        writer.close()
    os.replace(tmp_jsonl, jsonl_path)
    os.replace(tmp_parquet, parquet_path)
    return written
