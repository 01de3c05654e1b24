"""Result shards and the assembled ``results.jsonl`` / ``results.parquet``.

Finished clip records are buffered and written as numbered shards (temporary name,
then rename), so a shard on disk is always complete. Resuming reads the shards to
learn which clips are done; assembling keeps, for every current input clip, its
latest record: every clip exactly once, however often the run was interrupted.
"""

from __future__ import annotations

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


def latest_records(folder: Path, wanted: Iterable[str]) -> dict[str, tuple[int, int]]:
    """For each wanted clip id, the (shard, line) of its newest record."""
    wanted_set = set(wanted)
    latest: dict[str, tuple[int, int]] = {}
    for number, path in _shards(folder):
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f):
                if not line.strip():
                    continue
                clip_id = json.loads(line)["clip_id"]
                if clip_id in wanted_set:
                    latest[clip_id] = (number, line_no)
    return latest


def assemble(
    shard_folder: Path, clip_ids: Iterable[str], jsonl_path: Path, parquet_path: Path
) -> int:
    """Write the newest record of every wanted clip id, streaming shard by shard.

    Memory holds one position per clip and one Parquet row group, never all records,
    so assembling a million-clip run stays flat. Records come in completion order.
    """
    latest = latest_records(shard_folder, clip_ids)
    keep = {position for position in latest.values()}
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
                        out.write(line if line.endswith("\n") else line + "\n")
                        group.append(result_row(json.loads(line)))
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
