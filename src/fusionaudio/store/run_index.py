"""The run folder's shards and this invocation's input clips, indexed on disk, so that
resuming and assembling a run of millions of clips holds no per-clip state in the driver.

The shards stay the truth: ``index.sqlite`` is derived from them, brought up to date by
reading only the shards written since, and rebuilt from scratch whenever it disagrees
with them (a shard changed or vanished, an index of another version, an unreadable
file). For each clip id it keeps what resuming and assembling need of the newest record:
its position, pipeline hash, status, source size and mtime, and a digest of its caption.
The ``inputs`` table holds the clips of the current invocation in discovery order, with
whether each is already done; it is replaced by every run.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionaudio.schema import Clip, Tag
from fusionaudio.store.results import Position, caption_digest, shard_files

INDEX_VERSION = 2
_CHUNK = 2000  # rows per insert or per page read: bounded memory, few round trips

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shards (
    name TEXT PRIMARY KEY, number INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, damaged INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS latest (
    clip_id TEXT PRIMARY KEY, shard INTEGER NOT NULL, line INTEGER NOT NULL,
    pipeline_hash TEXT, status TEXT, source_size INTEGER, source_mtime_ns INTEGER,
    digest BLOB);
CREATE INDEX IF NOT EXISTS latest_position ON latest (shard, line);
"""


class DuplicateClipIdError(ValueError):
    """Two input clips share an id; ids name records, so the input is refused."""

    def __init__(self, clip_id: str) -> None:
        super().__init__(f"duplicate clip_id {clip_id!r}")
        self.clip_id = clip_id


@dataclass(frozen=True)
class Newest:
    """What the newest record of a clip says about whether it can be kept."""

    pipeline_hash: str | None
    status: str | None
    source_size: int | None
    source_mtime_ns: int | None


class RunIndex:
    """One driver's view of a run folder; used under the run's lock, by one thread at a
    time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = self._connect()
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] not in (0, INDEX_VERSION):
                raise sqlite3.DatabaseError("another index version")
            return self._initialise(db)
        except sqlite3.DatabaseError:
            db.close()
            self.path.unlink(missing_ok=True)  # derived data: start again from the shards
            return self._initialise(self._connect())

    def _connect(self) -> sqlite3.Connection:
        # The engine may pull the next clip from another thread; one thread at a time.
        return sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)

    @staticmethod
    def _initialise(db: sqlite3.Connection) -> sqlite3.Connection:
        db.execute("PRAGMA journal_mode = DELETE")  # no shared memory: any file system
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        db.execute(f"PRAGMA user_version = {INDEX_VERSION}")
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- shards -----------------------------------------------------------------------

    def refresh(self, shard_dir: Path) -> int:
        """Index the shards written since the last refresh; returns how many were read."""
        on_disk = {path.name: (number, path) for number, path in shard_files(shard_dir)}
        indexed = {
            name: (number, size, mtime_ns)
            for name, number, size, mtime_ns in self._db.execute(
                "SELECT name, number, size, mtime_ns FROM shards"
            )
        }
        stale = False
        for name, (_, size, mtime_ns) in indexed.items():
            if name not in on_disk:
                stale = True
                break
            st = on_disk[name][1].stat()
            if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
                stale = True
                break
        new = sorted(number_path for name, number_path in on_disk.items() if name not in indexed)
        newest_indexed = max((number for number, _, _ in indexed.values()), default=0)
        if new and new[0][0] < newest_indexed:
            stale = True  # "newest record" follows shard numbers; an older one came back
        if stale:
            with self._db:  # both or neither: rows of a vanished shard must not outlive it
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM shards")
                self._db.execute("DELETE FROM latest")
            new = sorted(on_disk.values())
        for number, path in new:
            self._index_shard(number, path)
        return len(new)

    def _index_shard(self, number: int, path: Path) -> None:
        """Index one shard's records. A damaged line (a shard copied or restored
        incompletely) is skipped and counted: its clip is computed again, with the stage
        cache serving what it holds, instead of every later run stopping on it."""
        st = path.stat()
        rows: list[tuple[Any, ...]] = []
        damaged = 0
        with path.open("rb") as f:
            for line_no, line in enumerate(f):
                if not line.strip():
                    continue
                try:
                    rows.append(_latest_row(number, line_no, json.loads(line)))
                except (ValueError, KeyError, TypeError, AttributeError):
                    damaged += 1
        with self._db:  # one transaction: a shard is indexed whole or not at all
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._db.execute(
                "INSERT OR REPLACE INTO shards VALUES (?, ?, ?, ?, ?)",
                (path.name, number, st.st_size, st.st_mtime_ns, damaged),
            )

    def damaged_lines(self) -> int:
        """Lines of the indexed shards that could not be read as records."""
        return int(self._db.execute("SELECT COALESCE(SUM(damaged), 0) FROM shards").fetchone()[0])

    # --- this invocation's inputs -------------------------------------------------------

    def set_inputs(self, clips: Iterable[Clip]) -> int:
        """Replace the input table by ``clips`` in their order; DuplicateClipIdError on a
        repeated clip id. Returns how many there are."""
        self._db.execute("DROP TABLE IF EXISTS inputs")
        self._db.execute(
            f"CREATE TABLE inputs (ordinal INTEGER PRIMARY KEY, {_CLIP_COLUMNS}, done TEXT)"
        )
        total = 0
        chunk: list[tuple[Any, ...]] = []
        for clip in clips:
            chunk.append(_clip_row(clip))
            if len(chunk) >= _CHUNK:
                total += self._insert_inputs(chunk)
                chunk = []
        total += self._insert_inputs(chunk)
        return total

    def _insert_inputs(self, chunk: list[tuple[Any, ...]]) -> int:
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    f"INSERT INTO inputs ({_CLIP_NAMES}) VALUES (?, ?, ?, ?, ?, ?, ?)", chunk
                )
        except sqlite3.IntegrityError:
            ids = [row[0] for row in chunk]
            for clip_id in ids:  # name the repeated id (a rare, fatal case)
                taken = self._db.execute("SELECT 1 FROM inputs WHERE clip_id = ?", (clip_id,))
                if taken.fetchone() or ids.count(clip_id) > 1:
                    raise DuplicateClipIdError(clip_id) from None
            raise
        return len(chunk)

    def mark_done(self, keep: Callable[[str, Newest], bool]) -> Counter[str]:
        """Mark every input clip whose newest record ``keep`` accepts (given the clip's
        source and that record) as done, with the record's status; returns the count of
        each status kept."""
        counts: Counter[str] = Counter()
        after = 0
        while True:
            page = self._db.execute(
                "SELECT i.ordinal, i.source, l.pipeline_hash, l.status,"
                " l.source_size, l.source_mtime_ns"
                " FROM inputs i JOIN latest l ON l.clip_id = i.clip_id"
                " WHERE i.ordinal > ? ORDER BY i.ordinal LIMIT ?",
                (after, _CHUNK),
            ).fetchall()
            if not page:
                return counts
            done = []
            for ordinal, source, *newest in page:
                record = Newest(*newest)
                if record.status is not None and keep(source, record):
                    done.append((record.status, ordinal))
                    counts[record.status] += 1
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("UPDATE inputs SET done = ? WHERE ordinal = ?", done)
            after = page[-1][0]

    def todo(self) -> Iterator[Clip]:
        """The input clips not marked done, in input order, a page at a time."""
        after = 0
        while True:
            page = self._db.execute(
                f"SELECT ordinal, {_CLIP_NAMES} FROM inputs WHERE done IS NULL AND ordinal > ?"
                " ORDER BY ordinal LIMIT ?",
                (after, _CHUNK),
            ).fetchall()
            if not page:
                return
            for row in page:
                yield _clip(row[1:])
            after = page[-1][0]

    def positions(self) -> Iterator[Position]:
        """Every input clip's newest record, in shard and line order (the order they are
        read in), with the owner of a caption several clips share: the smallest clip id,
        so that the choice depends on the clips alone, never on their order, the engine,
        or how often the run resumed."""
        self._db.execute("DROP TABLE IF EXISTS temp.owners")
        self._db.execute("CREATE TEMP TABLE owners (digest BLOB PRIMARY KEY, owner TEXT)")
        self._db.execute(
            "INSERT INTO owners SELECT l.digest, MIN(l.clip_id) FROM inputs i"
            " JOIN latest l ON l.clip_id = i.clip_id WHERE l.digest IS NOT NULL"
            " GROUP BY l.digest HAVING COUNT(*) > 1"
        )
        shard, line = 0, -1
        while True:
            page = self._db.execute(
                "SELECT l.shard, l.line, l.clip_id, o.owner FROM latest l"
                " JOIN inputs i ON i.clip_id = l.clip_id"
                " LEFT JOIN owners o ON o.digest = l.digest"
                " WHERE (l.shard, l.line) > (?, ?) ORDER BY l.shard, l.line LIMIT ?",
                (shard, line, _CHUNK),
            ).fetchall()
            if not page:
                return
            for row in page:
                yield Position(*row)
            shard, line = page[-1][0], page[-1][1]


def _latest_row(number: int, line_no: int, record: dict[str, Any]) -> tuple[Any, ...]:
    provenance = record.get("provenance") or {}
    return (
        record["clip_id"],
        number,
        line_no,
        provenance.get("pipeline_hash"),
        record.get("status"),
        provenance.get("source_size"),
        provenance.get("source_mtime_ns"),
        caption_digest(record),
    )


_CLIP_COLUMNS = (
    "clip_id TEXT NOT NULL UNIQUE, source TEXT NOT NULL, root TEXT, start_s REAL NOT NULL,"
    " end_s REAL, segment_index INTEGER, tags TEXT"
)
_CLIP_NAMES = "clip_id, source, root, start_s, end_s, segment_index, tags"


def _clip_row(clip: Clip) -> tuple[Any, ...]:
    tags = json.dumps([t.to_dict() for t in clip.tags], ensure_ascii=False) if clip.tags else None
    return (
        clip.clip_id,
        clip.source,
        clip.root,
        clip.start_s,
        clip.end_s,
        clip.segment_index,
        tags,
    )


def _clip(row: tuple[Any, ...]) -> Clip:
    clip_id, source, root, start_s, end_s, segment_index, tags = row
    return Clip(
        clip_id=clip_id,
        source=source,
        tags=tuple(Tag.from_dict(t) for t in json.loads(tags)) if tags else (),
        start_s=start_s,
        end_s=end_s,
        segment_index=segment_index,
        root=root,
    )
