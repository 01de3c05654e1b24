"""Throughput of `fusionaudio run` on the example clips, and the reuse of a second run.

Baseline in the same process: the sequential engine. Prints clips/s, audio seconds per
wall second, and ratios. Usage: python benchmarks/bench_run.py [--copies N]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import soundfile as sf

from fusionaudio.config import RunConfig, load_config
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.pipeline.run import RunSummary, run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def make_inputs(folder: Path, copies: int) -> float:
    """Distinct variants of each example (tiny gain change), as FLAC; returns total audio s."""
    total = 0.0
    for source in sorted(EXAMPLES.iterdir()):
        if source.suffix == ".md":
            continue
        audio = decode_audio(source, Window(0.0, None), 30).audio
        for k in range(copies):
            samples = audio.samples * (1.0 - 0.001 * k)
            sf.write(str(folder / f"{source.stem}_{k}.flac"), samples.T, audio.sample_rate)
            total += audio.duration_s
    return total


def timed(src: Path, out: Path, config: RunConfig) -> tuple[float, RunSummary]:
    started = time.perf_counter()
    summary = run(src, out, config)
    return time.perf_counter() - started, summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=5)
    args = parser.parse_args()
    base = load_config()
    work = Path(tempfile.mkdtemp(prefix="fa-bench-"))
    try:
        src = work / "in"
        src.mkdir()
        audio_s = make_inputs(src, args.copies)
        clips = len(list(src.iterdir()))
        # Warm-up: model extraction and imports are not what we measure.
        run(EXAMPLES, work / "warm", base)
        seq_cfg = base.model_copy(
            update={"engine": base.engine.model_copy(update={"kind": "sequential"})}
        )
        t_seq, _ = timed(src, work / "seq", seq_cfg)
        t_local, local = timed(src, work / "local", base)
        t_reuse, reuse = timed(src, work / "local", base)
        print(
            f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}"
        )
        print(f"{clips} clips, {audio_s:.0f} s of audio")
        print(
            f"sequential engine : {t_seq:6.2f} s  {clips / t_seq:6.1f} clips/s  {audio_s / t_seq:7.1f} x real time"
        )
        print(
            f"local streaming   : {t_local:6.2f} s  {clips / t_local:6.1f} clips/s  {audio_s / t_local:7.1f} x real time"
        )
        print(f"  speed-up over sequential: {t_seq / t_local:.2f}x")
        print(
            f"second run (reuse): {t_reuse:6.2f} s  reused {reuse.reused}/{reuse.total}; {t_local / t_reuse:.0f}x faster than the first"
        )
        for name, stage in local.stages.items():
            print(
                f"  stage {name:8s}: busy {stage.busy_s:.2f} s = {stage.busy_s / audio_s * 1000:.1f} ms per audio second"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
