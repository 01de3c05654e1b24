"""The driver's bookkeeping at scale: discovering a manifest, deciding which clips are
done, streaming the rest, and assembling the results, at N and 10N clips.

Measured in the same run on the same manifests and shards, with no model involved:

- ``index``: what ``fusionaudio run`` does (``iter_clips`` streamed into the run's
  on-disk index, ``RunIndex.refresh`` / ``mark_done`` / ``todo``, ``assemble`` over
  ``RunIndex.positions``);
- ``in-memory`` (the baseline, the driver before the index): ``discover`` as a list, a
  map from clip id to the newest record's status, the list of clips to do, and one
  position per clip for assembling.

The manifest's lines point at the real recordings in ``../shared/data/sounds`` (cycled),
so that stat calls and the confinement check see real files; half of the clips have a
finished record in the shards. Reports seconds, the peak memory Python allocated
(tracemalloc) in each pass, the memory held while the clips to do stream to the engine
(what the driver keeps for the whole run), and the ratios of 10N to N.

Usage: python benchmarks/bench_driver.py [--clips 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fusionaudio.config import RunConfig
from fusionaudio.pipeline.inputs import discover, iter_clips
from fusionaudio.store.results import Position, ShardWriter, assemble, caption_digest
from fusionaudio.store.run_index import Newest, RunIndex

SOUNDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"


def _prepare(folder: Path, count: int) -> Path:
    """A manifest of ``count`` lines and shards holding a record for every other clip."""
    files = sorted(p for p in SOUNDS.rglob("*") if p.suffix in {".wav", ".flac", ".ogg"})
    (folder / "audio").symlink_to(SOUNDS, target_is_directory=True)
    manifest = folder / "clips.jsonl"
    writer = ShardWriter(folder / "shards", 64, 3600.0)
    with manifest.open("w", encoding="utf-8") as out:
        for i in range(count):
            source = files[i % len(files)]
            relative = f"audio/{source.relative_to(SOUNDS).as_posix()}"
            clip_id = f"clip-{i:08d}"
            out.write(json.dumps({"path": relative, "clip_id": clip_id}) + "\n")
            if i % 2 == 0:
                st = source.stat()
                writer.add(
                    {
                        "clip_id": clip_id,
                        "source": str(folder / relative),
                        "status": "ok",
                        "caption": {"text": f"caption {i % 1000}", "provenance": {}},
                        "provenance": {
                            "pipeline_hash": "p1",
                            "source_size": st.st_size,
                            "source_mtime_ns": st.st_mtime_ns,
                        },
                    }
                )
    writer.flush()
    return manifest


def _keep(source: str, newest: Newest) -> bool:
    if newest.pipeline_hash != "p1":
        return False
    st = Path(source).stat()
    return newest.source_size == st.st_size and newest.source_mtime_ns == st.st_mtime_ns


def indexed(folder: Path, manifest: Path, config: RunConfig, running: Callable[[], None]) -> int:
    with RunIndex(folder / "index.sqlite") as index:
        index.set_inputs(iter_clips(manifest, config.media, config.inputs))
        index.refresh(folder / "shards")
        index.mark_done(_keep)
        todo = 0
        for _ in index.todo():
            todo += 1
            if todo == 1:  # a page of clips to do is loaded: the engine would run now
                running()
        index.refresh(folder / "shards")
        assemble(
            folder / "shards", index.positions(), folder / "results.jsonl", folder / "r.parquet"
        )
    return todo


def in_memory(folder: Path, manifest: Path, config: RunConfig, running: Callable[[], None]) -> int:
    clips = discover(manifest, config.media, config.inputs)
    by_id = {clip.clip_id: clip for clip in clips}
    latest: dict[str, tuple[int, int, dict[str, Any], bytes | None]] = {}
    for number in range(1, 1 << 30):
        path = folder / "shards" / f"part-{number:06d}.jsonl"
        if not path.exists():
            break
        with path.open(encoding="utf-8") as f:
            for line_no, line in enumerate(f):
                record = json.loads(line)
                prov = record["provenance"]
                latest[record["clip_id"]] = (number, line_no, prov, caption_digest(record))
    done: dict[str, str] = {}
    for clip_id, (_, _, prov, _) in latest.items():
        clip = by_id[clip_id]
        newest = Newest(prov["pipeline_hash"], "ok", prov["source_size"], prov["source_mtime_ns"])
        if _keep(clip.source, newest):
            done[clip_id] = "ok"
    todo = [clip for clip in clips if clip.clip_id not in done]
    running()
    positions = sorted(
        (Position(shard, line, clip_id, None) for clip_id, (shard, line, _, _) in latest.items()),
        key=lambda position: (position.shard, position.line),
    )
    assemble(folder / "shards", positions, folder / "results.jsonl", folder / "r.parquet")
    return len(todo)


Pass = Callable[[Path, Path, RunConfig, Callable[[], None]], int]


def _measure(fn: Pass, folder: Path, manifest: Path) -> dict[str, float]:
    """Seconds, peak bytes, and bytes held while the engine would be running (the clips
    to do streaming out), leaving out the interpreter's table of interned strings, which
    pathlib grows for the whole process."""
    config = RunConfig()
    held: list[int] = []
    filters = [tracemalloc.Filter(False, pathlib.__file__)]
    measuring = 0.0

    def running() -> None:
        nonlocal measuring
        started = time.perf_counter()
        snapshot = tracemalloc.take_snapshot().filter_traces(filters)
        held.append(sum(stat.size for stat in snapshot.statistics("filename")))
        measuring += time.perf_counter() - started

    tracemalloc.start()
    started = time.perf_counter()
    try:
        todo = fn(folder, manifest, config, running)
        wall = time.perf_counter() - started - measuring
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"todo": todo, "wall_s": wall, "peak_mb": peak / 1e6, "held_mb": held[0] / 1e6}


def _cpu() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=20_000, help="N; 10N is measured too")
    args = parser.parse_args()
    print(f"machine: {_cpu()}, {os.cpu_count()} cores, python {platform.python_version()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm"
        warm.mkdir()
        warm_manifest = _prepare(warm, 2000)
        for fn in (indexed, in_memory):  # first-use allocations of sqlite3, pyarrow, json
            _measure(fn, warm, warm_manifest)
        for count in (args.clips, 10 * args.clips):
            folder = Path(tmp) / str(count)
            folder.mkdir()
            manifest = _prepare(folder, count)
            for name, fn in (("index", indexed), ("in-memory", in_memory)):
                result = _measure(fn, folder, manifest)
                rows.append((name, count, result))
                print(
                    f"{name:>9} {count:>9,} clips: {result['wall_s']:7.1f} s "
                    f"({count / result['wall_s']:8.0f} clips/s), peak {result['peak_mb']:7.1f} MB,"
                    f" held while streaming {result['held_mb']:7.2f} MB",
                    flush=True,
                )
    print("\n10N / N            wall   peak   held")
    for name in ("index", "in-memory"):
        small, large = (r for n, _, r in rows if n == name)
        print(
            f"{name:>9}      {large['wall_s'] / small['wall_s']:6.1f}x  "
            f"{large['peak_mb'] / small['peak_mb']:6.2f}x {large['held_mb'] / small['held_mb']:6.2f}x"
        )


if __name__ == "__main__":
    main()
