"""A real ``kill -9`` in the middle of a run, then the same command again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fusionaudio.config import load_config
from fusionaudio.pipeline.run import run
from fusionaudio.store.stage_cache import StageCache
from tests.media_factory import write_audio

CLIPS = 30


def _make_clips(folder: Path, speech: np.ndarray) -> None:
    folder.mkdir()
    rng = np.random.default_rng(1)
    base = np.tile(speech, 2)[: 15 * 16_000]
    for i in range(CLIPS):
        noisy = base + 0.01 * rng.standard_normal(len(base)).astype(np.float32)
        write_audio(folder / f"clip_{i:02d}.flac", noisy[None, :], 16_000)


def _cache_entries(run_dir: Path, stage: str) -> int:
    return StageCache(run_dir / "cache").count(stage)


def test_kill_minus_nine_then_resume_exactly_once(
    tmp_path: Path, speech_16k: np.ndarray, models_dir: Path
) -> None:
    src, run_dir = tmp_path / "in", tmp_path / "run"
    _make_clips(src, speech_16k)
    config_file = tmp_path / "c.yaml"
    config_file.write_text(
        f"models_dir: {models_dir}\nstore:\n  shard_records: 2\nexperts:\n"
        + "".join(
            f"  {name}: {{enabled: false}}\n"
            for name in ("separation", "asr", "audio_description", "music", "vision")
        )
        + "fusion: {enabled: false}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "fusionaudio", "run", str(src), "--out", str(run_dir),
         "--config", str(config_file), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        shards = list((run_dir / "shards").glob("part-*.jsonl"))
        if len(shards) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    assert not (run_dir / "results.jsonl").exists()
    vad_cached = _cache_entries(run_dir, "vad")
    shard_records = sum(
        len(p.read_text().splitlines()) for p in (run_dir / "shards").glob("part-*.jsonl")
    )
    assert 0 < shard_records < CLIPS and vad_cached >= shard_records

    config = load_config(config_file)
    summary = run(src, run_dir, config)
    # Nothing computed before the kill is computed again.
    assert summary.stages["vad"].computed == CLIPS - vad_cached
    assert summary.processed == CLIPS - shard_records
    assert _cache_entries(run_dir, "vad") == CLIPS
    assert not list(run_dir.rglob(".*.tmp"))

    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    ids = [r["clip_id"] for r in records]
    assert sorted(ids) == sorted(f"clip_{i:02d}.flac" for i in range(CLIPS))
    assert len(set(ids)) == len(ids) == CLIPS
    assert all(r["status"] == "ok" and r["cues"]["vad"]["output"]["has_speech"] for r in records)
