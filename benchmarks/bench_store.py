"""The stage cache at scale: SQLite segments against the earlier one-JSON-file-per-entry
layout, measured in the same run on the same entries.

Writes N entries (a cue-sized JSON each, as a stage writes them: one commit per batch of
16), then looks all of them up (the way a resumed run's load step does, one clip's stages
at a time), and reports files on disk, bytes, and entries per second for both stores.

Usage: python benchmarks/bench_store.py [--entries 100000] [--stages 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from fusionaudio.store.atomic import atomic_write_text
from fusionaudio.store.stage_cache import StageCache


class JsonFiles:
    """The layout before the segments (kept here as the baseline)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, stage: str, key: str, value: dict[str, Any]) -> None:
        atomic_write_text(self.root / stage / key[:2] / f"{key}.json", json.dumps(value))

    def get(self, stage: str, key: str) -> dict[str, Any] | None:
        try:
            value: dict[str, Any] = json.loads(
                (self.root / stage / key[:2] / f"{key}.json").read_text()
            )
        except FileNotFoundError:
            return None
        return value


def _cue(i: int) -> dict[str, Any]:
    return {"kind": "cue", "expert": "tagging", "output": {"top_tags": [
        {"label": f"Label {j}", "index": j, "confidence": 0.1234} for j in range(10)]},
        "provenance": {"stage": "tagging", "config_hash": "0123456789abcdef", "elapsed_s": i / 1e3}}  # fmt: skip


def _size(root: Path) -> tuple[int, int]:
    files = [p for p in root.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--stages", type=int, default=4)
    args = parser.parse_args()
    stages = [f"stage{s}" for s in range(args.stages)]
    clips = args.entries // args.stages
    keys = [f"{i:08x}{os.urandom(4).hex()}" for i in range(clips)]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("json_files", "sqlite_segments"):
            root = Path(scratch) / name
            store: Any = JsonFiles(root) if name == "json_files" else StageCache(root)
            started = time.perf_counter()
            for i, key in enumerate(keys):
                for stage in stages:
                    store.put(stage, key, _cue(i))
                if name == "sqlite_segments" and i % 16 == 15:
                    store.commit()
            if name == "sqlite_segments":
                store.commit()
                store.compact()
                store = StageCache(root)
            write_s = time.perf_counter() - started
            started = time.perf_counter()
            for key in keys:
                if name == "json_files":
                    found = sum(store.get(stage, key) is not None for stage in stages)
                else:
                    found = len(store.get_many([(stage, key) for stage in stages]))
                assert found == len(stages)
            read_s = time.perf_counter() - started
            files, size = _size(root)
            results[name] = {"write_per_s": clips * len(stages) / write_s,
                             "read_per_s": clips * len(stages) / read_s,
                             "files": files, "mb": size / 2**20}  # fmt: skip
    base, new = results["json_files"], results["sqlite_segments"]
    print(f"{clips * len(stages)} entries ({clips} clips x {len(stages)} stages) on "
          f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    print("| store | files | MB | writes/s | lookups/s |")
    print("|---|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['files']} | {row['mb']:.0f} | {row['write_per_s']:.0f} | "
              f"{row['read_per_s']:.0f} |")  # fmt: skip
    print(f"ratios (segments / files): files {new['files'] / base['files']:.5f}, "
          f"writes {new['write_per_s'] / base['write_per_s']:.2f}x, "
          f"lookups {new['read_per_s'] / base['read_per_s']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
