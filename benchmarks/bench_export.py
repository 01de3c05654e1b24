"""Every export format on one run folder: rows, size and seconds (after a warm-up export,
so imports and first writers are not counted), each against the JSONL export (a plain
streaming copy of the records, the floor) measured in the same run.

Usage: python benchmarks/bench_export.py RUN_DIR [--sample-rate HZ]
(`make demo` makes runs/demo from the bundled examples.)
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

from fusionaudio.dataset.export import EXPORT_FORMATS, export


def size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--sample-rate", type=int, default=None)
    args = parser.parse_args()
    print(f"{platform.machine()}, {platform.processor() or platform.platform()}; {args.run_dir}")
    print("| format | rows | size | seconds | vs jsonl |")
    print("|---|---|---|---|---|")
    floor = None
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("jsonl", *[f for f in EXPORT_FORMATS if f != "jsonl"]):
            out = Path(tmp) / f"export.{fmt}"
            export(args.run_dir, fmt, out, None, sample_rate=args.sample_rate)  # type: ignore[arg-type]  # warm-up: imports, first writers
            started = time.perf_counter()
            report = export(args.run_dir, fmt, out, None, sample_rate=args.sample_rate)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            floor = floor or seconds
            print(
                f"| {fmt} | {report.rows} | {size(out) / 1e6:.2f} MB | {seconds:.2f} "
                f"| {seconds / floor:.1f}x |"
            )
            shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink()


if __name__ == "__main__":
    main()
