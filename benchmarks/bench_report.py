"""``fusionaudio report`` on a large synthetic run: time and peak memory at 10,000 and 100,000
records, against the cost of merely reading ``results.jsonl`` (the floor of any streaming
report), measured in the same run.

The records are real ones, from a run of the fast experts over the bundled examples and
a few labelled recordings (captions realised from the plan by code), copied under new clip
ids with their captions varied (words swapped from the run's own vocabulary), so that the
diversity and near-duplicate figures have real work to do.

Usage: python benchmarks/bench_report.py [--records 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOUNDS = REPO.parent / "shared" / "data" / "sounds"

MEASURE = """
import json, sys, time
from pathlib import Path
mode, run_dir = sys.argv[1], Path(sys.argv[2])
started = time.perf_counter()
if mode == "read":
    n = sum(1 for line in (run_dir / "results.jsonl").open() if json.loads(line))
else:
    from fusionaudio.report import build_report
    build_report(run_dir, run_dir / "report.html", gallery=12)
# VmHWM is this process's own peak (ru_maxrss would include the parent's at fork time)
peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"s": time.perf_counter() - started, "peak_mb": peak_kb / 1024}))
"""


def seed_run(folder: Path) -> Path:
    """A real run of the fast experts; the LLM server is dead, so code writes each caption."""
    from fusionaudio.config import RunConfig, load_config
    from fusionaudio.pipeline.run import run

    src = folder / "in"
    src.mkdir(parents=True)
    for path in sorted((REPO / "examples").glob("*.*")):
        if path.suffix != ".md":
            shutil.copy(path, src)
    rows = [json.loads(line) for line in (SOUNDS / "labels.jsonl").open()]
    for row in rows[::6]:
        shutil.copy(SOUNDS / row["path"], src / f"{row['class']}_{Path(row['path']).name}")
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(folder / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging", "given_tags"}
    data["fusion"]["llm"] = {
        "backend": "openai",
        "server": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "max_retries": 0},
    }
    data["fusion"]["max_attempts"] = 1
    run(src, folder / "seed", RunConfig.model_validate(data))
    return folder / "seed"


def synthesise(seed: Path, n: int, out: Path) -> None:
    lines = [json.loads(line) for line in (seed / "results.jsonl").open()]
    vocab = sorted(
        {w for r in lines if r.get("caption") for w in r["caption"]["text"].split() if w.isalpha()}
    )
    rng = random.Random(0)
    out.mkdir(parents=True)
    shutil.copy(seed / "run.json", out / "run.json")
    with (out / "results.jsonl").open("w") as f:
        for i in range(n):
            record = dict(lines[i % len(lines)])
            record["clip_id"] = f"{record['clip_id']}#{i:07d}"
            if record.get("caption"):
                words = record["caption"]["text"].split()
                for _ in range(2):
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                record["caption"] = {**record["caption"], "text": " ".join(words)}
                record["scores"] = {"clap": round(rng.random(), 4)}
            f.write(json.dumps(record) + "\n")


def measure(mode: str, run_dir: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(run_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    print(f"{platform.machine()}, {platform.processor() or platform.platform()}")
    with tempfile.TemporaryDirectory() as tmp:
        seed = seed_run(Path(tmp))
        print(
            "| records | read results.jsonl s | report s | ratio | peak MB (read) | peak MB (report) |"
        )
        print("|---|---|---|---|---|---|")
        for n in args.records:
            folder = Path(tmp) / f"run{n}"
            synthesise(seed, n, folder)
            read = measure("read", folder)
            report = measure("report", folder)
            print(
                f"| {n:,} | {read['s']:.1f} | {report['s']:.1f} | {report['s'] / read['s']:.1f}x "
                f"| {read['peak_mb']:.0f} | {report['peak_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
