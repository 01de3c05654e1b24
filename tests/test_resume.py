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


def _make_clips(folder: Path, speech: np.ndarray, count: int = CLIPS, seconds: int = 15) -> None:
    folder.mkdir()
    rng = np.random.default_rng(1)
    base = np.tile(speech, 2)[: seconds * 16_000]
    for i in range(count):
        noisy = base + 0.01 * rng.standard_normal(len(base)).astype(np.float32)
        write_audio(folder / f"clip_{i:02d}.flac", noisy[None, :], 16_000)


def _cache_entries(run_dir: Path, stage: str) -> int:
    return StageCache(run_dir / "cache").count(stage)


def _write_config(path: Path, models_dir: Path, stage2: str) -> Path:
    """The fast experts only (VAD, tagging), small shards, and ``stage2``'s YAML lines."""
    path.write_text(
        f"models_dir: {models_dir}\nstore:\n  shard_records: 2\nexperts:\n"
        + "".join(
            f"  {name}: {{enabled: false}}\n"
            for name in ("separation", "asr", "audio_description", "music", "vision")
        )
        + stage2
    )
    return path


def _start_run(src: Path, run_dir: Path, config_file: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fusionaudio", "run", str(src), "--out", str(run_dir),
         "--config", str(config_file), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_kill_minus_nine_then_resume_exactly_once(
    tmp_path: Path, speech_16k: np.ndarray, models_dir: Path
) -> None:
    src, run_dir = tmp_path / "in", tmp_path / "run"
    _make_clips(src, speech_16k)
    config_file = _write_config(tmp_path / "c.yaml", models_dir, "fusion: {enabled: false}\n")
    proc = _start_run(src, run_dir, config_file)
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


def _slow_empty_answer(body: dict[str, object]) -> str:
    time.sleep(0.25)  # the LLM stages are the bottleneck, so the kill lands while they run
    return "{}"


def test_kill_minus_nine_while_fusion_and_qa_run_then_resume(
    tmp_path: Path, speech_16k: np.ndarray, models_dir: Path
) -> None:
    """No clip twice, none lost, and no LLM answer that was already cached asked for again."""
    from tests.openai_server import ServerScript, serve

    src, run_dir = tmp_path / "in", tmp_path / "run"
    clips = 12
    _make_clips(src, speech_16k, clips, seconds=4)
    fusion_server = ServerScript(reply=_slow_empty_answer)
    qa_server = ServerScript(reply=_slow_empty_answer)
    with serve(fusion_server) as fusion_url, serve(qa_server) as qa_url:

        def llm(url: str) -> str:
            return (
                f"{{backend: openai, server: {{base_url: '{url}', model: m, max_retries: 0, "
                "timeout_s: 5}}"
            )

        config_file = _write_config(
            tmp_path / "c.yaml",
            models_dir,
            f"fusion: {{max_attempts: 1, llm: {llm(fusion_url)}}}\n"
            f"qa: {{llm_pairs: 1, max_attempts: 1, llm: {llm(qa_url)}}}\n"
            "quality: {enabled: false}\n",
        )
        proc = _start_run(src, run_dir, config_file)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if len(fusion_server.requests) >= 4 and len(qa_server.requests) >= 3:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended first: {proc.stderr.read()!r}"  # type: ignore[union-attr]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        fusion_cached = _cache_entries(run_dir, "fusion")
        qa_cached = _cache_entries(run_dir, "qa")
        assert 0 < qa_cached <= fusion_cached < clips
        asked = len(fusion_server.requests), len(qa_server.requests)

        summary = run(src, run_dir, load_config(config_file))
        assert summary.stages["fusion"].computed == clips - fusion_cached
        assert summary.stages["qa"].computed <= clips - qa_cached
        # one request per fusion computed (one attempt), none for a cached answer
        assert len(fusion_server.requests) - asked[0] == clips - fusion_cached
        assert len(qa_server.requests) - asked[1] == summary.stages["qa"].computed

    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    ids = [r["clip_id"] for r in records]
    assert sorted(ids) == sorted(f"clip_{i:02d}.flac" for i in range(clips))
    assert len(set(ids)) == clips
    assert all(r["caption"] and r["qa"] for r in records if r["status"] != "uncertain")
    assert _cache_entries(run_dir, "fusion") == _cache_entries(run_dir, "qa") == clips
