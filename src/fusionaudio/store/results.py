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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fusionaudio.schema.arrow import RESULT_SCHEMA, result_row
from fusionaudio.store.atomic import atomic_write_text

_SHARD = re.compile(r"^part-(\d{6})\.jsonl$")
DUPLICATE_WARNING = "duplicate caption: identical to the caption of clip"


def _shards(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SHARD.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def iter_shard_records(folder: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, path in _shards(folder):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield number, json.loads(line)


class ShardWriter:
    """Buffers records and writes them as complete shards, by count or by age."""

    def __init__(self, folder: Path, max_records: int, max_age_s: float) -> None:
        self.folder = folder
        self.max_records = max_records
        self.max_age_s = max_age_s
        folder.mkdir(parents=True, exist_ok=True)
        existing = _shards(folder)
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
        path = self.folder / f"part-{self._next:06d}.jsonl"
        atomic_write_text(path, "\n".join(self._buffer) + "\n")
        self._next += 1
        self._buffer = []


def caption_digest(record: dict[str, Any]) -> bytes | None:
    """16 bytes that are equal when two captions read the same (case and spacing folded)."""
    text = (record.get("caption") or {}).get("text")
    if not text:
        return None
    folded = " ".join(str(text).lower().split())
    return hashlib.blake2b(folded.encode(), digest_size=16).digest()


def latest_records(folder: Path, wanted: Iterable[str]) -> dict[str, tuple[int, int, bytes | None]]:
    """For each wanted clip id, the (shard, line, caption digest) of its newest record."""
    wanted_set = set(wanted)
    latest: dict[str, tuple[int, int, bytes | None]] = {}
    for number, path in _shards(folder):
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f):
                if not line.strip():
                    continue
                record = json.loads(line)
                if record["clip_id"] in wanted_set:
                    latest[record["clip_id"]] = (number, line_no, caption_digest(record))
    return latest


def first_with_caption(latest: dict[str, tuple[int, int, bytes | None]]) -> dict[bytes, str]:
    """For each caption said by more than one clip, the clip that keeps it unmarked: the
    smallest clip id, so the choice depends on the clips alone, never on their order, the
    engine, or how often the run resumed."""
    first: dict[bytes, str] = {}
    repeated: set[bytes] = set()
    for clip_id, (_, _, digest) in latest.items():
        if digest is None:
            continue
        if digest in first:
            repeated.add(digest)
            first[digest] = min(first[digest], clip_id)
        else:
            first[digest] = clip_id
    return {digest: first[digest] for digest in repeated}


def mark_duplicate(record: dict[str, Any], digest: bytes | None, first: dict[bytes, str]) -> bool:
    """Add the duplicate-caption warning to a record whose caption an earlier clip said
    (``digest``: its caption's, as ``latest_records`` found it)."""
    owner = None if digest is None else first.get(digest)
    if owner is None or owner == record["clip_id"]:
        return False
    record["warnings"] = [
        *record.get("warnings", []),
        f"{DUPLICATE_WARNING} {owner!r}",
    ]
    return True


def assemble(
    shard_folder: Path, clip_ids: Iterable[str], jsonl_path: Path, parquet_path: Path
) -> int:
    """Write the newest record of every wanted clip id, streaming shard by shard.

    Memory holds one position and one caption digest per clip and one Parquet row group,
    never all records, so assembling a million-clip run stays flat. Records come in
    completion order. Captions said word for word by several clips are marked here, on
    every clip but the one with the smallest id (the stage cannot know other clips).
    """
    latest = latest_records(shard_folder, clip_ids)
    keep = {(number, line_no) for number, line_no, _ in latest.values()}
    first = first_with_caption(latest)
    tmp_jsonl = jsonl_path.with_name(f".{jsonl_path.name}.{os.getpid()}.tmp")
    tmp_parquet = parquet_path.with_name(f".{parquet_path.name}.{os.getpid()}.tmp")
    written = 0
    writer = pq.ParquetWriter(str(tmp_parquet), RESULT_SCHEMA)
    try:
        with tmp_jsonl.open("w", encoding="utf-8") as out:
            group: list[dict[str, Any]] = []
            for number, path in _shards(shard_folder):
                with path.open(encoding="utf-8") as f:
                    for line_no, line in enumerate(f):
                        if (number, line_no) not in keep:
                            continue
                        record = json.loads(line)
                        digest = latest[record["clip_id"]][2]
                        if mark_duplicate(record, digest, first):
                            line = json.dumps(record, ensure_ascii=False)
                        out.write(line if line.endswith("\n") else line + "\n")
                        group.append(result_row(record))
                        written += 1
                        if len(group) >= 1024:
                            writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
                            group = []
            if group:
                writer.write_table(pa.Table.from_pylist(group, schema=RESULT_SCHEMA))
            out.flush()
            os.fsync(out.fileno())
    finally:
        writer.close()
    os.replace(tmp_jsonl, jsonl_path)
    os.replace(tmp_parquet, parquet_path)
    return written
