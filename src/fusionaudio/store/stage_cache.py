"""Per-stage cache of cues, addressed by content (media hash + stage + stage config).

A million clips times a dozen stages is too many small files, so entries live in a few
SQLite files under ``cache/``:

- every writing process has its own segment, ``cues-<host>-<pid>-<random>.sqlite``: one
  writer per file, so processes on several nodes never contend for a lock, and a commit
  per finished batch (``commit()``) means a killed process loses at most that batch;
- ``cues.sqlite`` is the compacted store: ``compact()`` (run by the driver before and
  after the engine, when no worker writes) merges every segment into it and removes the
  segment, so lookups open one file plus this run's few segments;
- lookups read every file present when the process first looks (``get_many`` asks each
  file once for a whole batch of keys).

Values are zlib-compressed JSON. A run folder from the earlier layout (one JSON file per
entry under ``cache/<stage>/``) is imported by ``compact()`` and its files removed.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MAIN = "cues.sqlite"
SEGMENT_GLOB = "cues-*.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cues (stage TEXT NOT NULL, key TEXT NOT NULL, "
    "value BLOB NOT NULL, PRIMARY KEY (stage, key)) WITHOUT ROWID"
)
_LOOKUP_CHUNK = 400  # SQLite's default limit on bound variables is far above 2 x 400


def _connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        connection = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=60
        )
    else:
        connection = sqlite3.connect(path, check_same_thread=False, timeout=60)
        connection.execute("PRAGMA journal_mode=DELETE")  # no shared memory: any file system
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute(_SCHEMA)
        connection.commit()
    return connection


def _encode(value: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(value, ensure_ascii=False).encode(), 3)


def _decode(blob: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(zlib.decompress(blob))
    return value


class StageCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """Travels to worker processes without its connections (each opens its own)."""
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"])  # type: ignore[misc]

    # -- reading ------------------------------------------------------------------------

    def _open_readers(self) -> list[sqlite3.Connection]:
        if self._readers is None:
            files = [self.root / MAIN] if (self.root / MAIN).is_file() else []
            files += sorted(self.root.glob(SEGMENT_GLOB))
            self._readers = [_connect(path, readonly=True) for path in files]
        return self._readers

    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        return self.get_many([(stage, key)]).get((stage, key))

    def get_many(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Every entry found among ``wanted`` (stage, key) pairs, one query per file."""
        pending = list(dict.fromkeys(wanted))
        found: dict[tuple[str, str], dict[str, Any]] = {}
        with self._lock:
            connections = [*self._open_readers(), *([self._writer] if self._writer else [])]
            for connection in connections:
                missing = [pair for pair in pending if pair not in found]
                for start in range(0, len(missing), _LOOKUP_CHUNK):
                    chunk = missing[start : start + _LOOKUP_CHUNK]
                    where = " OR ".join(["(stage = ? AND key = ?)"] * len(chunk))
                    rows = connection.execute(
                        f"SELECT stage, key, value FROM cues WHERE {where}",
                        [item for pair in chunk for item in pair],
                    )
                    for stage, key, blob in rows:
                        found[(stage, key)] = _decode(blob)
        return found

    def count(self, stage: str) -> int:
        """Distinct entries of one stage (tests, reports)."""
        keys: set[str] = set()
        with self._lock:
            for connection in [*self._open_readers(), *([self._writer] if self._writer else [])]:
                rows = connection.execute("SELECT key FROM cues WHERE stage = ?", (stage,))
                keys.update(key for (key,) in rows)
        return len(keys)

    # -- writing ------------------------------------------------------------------------

    def put(self, stage: str, key: str, value: dict[str, Any]) -> None:
        """Written to this process's segment; durable at the next ``commit()``."""
        with self._lock:
            if self._writer is None:
                self.root.mkdir(parents=True, exist_ok=True)
                name = f"cues-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}.sqlite"
                self._writer = _connect(self.root / name)
            self._writer.execute(
                "INSERT OR REPLACE INTO cues (stage, key, value) VALUES (?, ?, ?)",
                (stage, key, _encode(value)),
            )

    def commit(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()

    def close(self) -> None:
        with self._lock:
            for connection in [*(self._readers or []), *([self._writer] if self._writer else [])]:
                connection.commit()
                connection.close()
            self._readers, self._writer = None, None

    # -- maintenance (the driver, while no worker writes) --------------------------------

    def compact(self) -> int:
        """Merge every segment (and a legacy JSON cache) into ``cues.sqlite``; returns the
        number of entries moved."""
        self.close()
        if not self.root.is_dir():
            return 0
        moved = 0
        main = _connect(self.root / MAIN)
        try:
            for segment in sorted(self.root.glob(SEGMENT_GLOB)):
                main.execute("ATTACH DATABASE ? AS segment", (str(segment),))
                moved += main.execute(
                    "INSERT OR REPLACE INTO cues SELECT stage, key, value FROM segment.cues"
                ).rowcount
                main.commit()
                main.execute("DETACH DATABASE segment")
                segment.unlink()
                Path(f"{segment}-journal").unlink(missing_ok=True)
            moved += self._import_legacy(main)
        finally:
            main.close()
        return moved

    def _import_legacy(self, main: sqlite3.Connection) -> int:
        """The layout before the segments: ``cache/<stage>/ab/<key>.json``."""
        moved = 0
        for stage_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = sorted(stage_dir.glob("*/*.json"))
            for path in files:
                try:
                    value = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, json.JSONDecodeError):
                    continue  # a torn entry is recomputed
                main.execute(
                    "INSERT OR IGNORE INTO cues (stage, key, value) VALUES (?, ?, ?)",
                    (stage_dir.name, path.stem, _encode(value)),
                )
                moved += 1
            main.commit()
            for path in files:
                path.unlink(missing_ok=True)
            for sub in sorted(stage_dir.glob("*"), reverse=True):
                if sub.is_dir() and not any(sub.iterdir()):
                    sub.rmdir()
            if not any(stage_dir.iterdir()):
                stage_dir.rmdir()
        return moved
