"""The hf and webdataset exports, read back the way training code reads them: with
``datasets`` and ``webdataset``, decoding the audio, on a real segmented run."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from fusionaudio.cli import cli
from fusionaudio.config import RunConfig
from fusionaudio.media.decode import Window, decode_audio
from fusionaudio.pipeline.run import run
from tests.real_sounds import clips_of

datasets = pytest.importorskip("datasets")
wds = pytest.importorskip("webdataset")


@pytest.fixture(scope="module")
def segmented_run(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Path:
    """3 s windows of the fox sentence and of a real dog recording (fast experts)."""
    from fusionaudio.config import load_config

    root = tmp_path_factory.mktemp("export")
    data = load_config().model_dump()
    data["models_dir"] = root / "models"
    data["fusion"]["enabled"] = False
    data["qa"]["enabled"] = False
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging"}
    data["media"].update(max_duration_s=3.0, long_clips="segment")
    src = root / "in"
    src.mkdir()
    shutil.copy(examples_dir / "speech_fox.wav", src)
    shutil.copy(clips_of("dog_bark")[0].path, src / "dog.flac")
    run(src, root / "run", RunConfig.model_validate(data))
    return root / "run"


def _window(record: dict, rate: int | None = None) -> np.ndarray:
    media = record["media"]
    audio = decode_audio(
        Path(record["source"]), Window(media["window_start_s"], media["window_end_s"]), 30
    ).audio
    if rate:
        audio = audio.resample(rate)
    return np.asarray(audio.samples[0])


def _records(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return {r["clip_id"]: r for r in map(json.loads, lines)}


def test_hf_export_loads_with_datasets_and_decodes_the_window(
    segmented_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "hf"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            str(segmented_run),
            "--format",
            "hf",
            "--all",
            "--out",
            str(out),
            "--shard-size",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    records = _records(segmented_run)
    assert f"wrote {len(records)} rows" in result.output
    shards = list((out / "data").glob("train-*.parquet"))
    assert len(shards) == (len(records) + 1) // 2  # 2 clips per shard
    card = (out / "README.md").read_text()
    assert "path: data/train-*.parquet" in card and f"rows: {len(records)}" in card
    assert "long_clips: segment" in card  # the run's configuration

    ds = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert isinstance(ds.features["audio"], datasets.Audio)
    assert sorted(ds["clip_id"]) == sorted(records)
    row = ds[ds["clip_id"].index("speech_fox.wav#0001")]
    record = records["speech_fox.wav#0001"]
    assert (row["window_start_s"], row["window_end_s"]) == (3.0, 6.0)
    decoded = row["audio"]
    expected = _window(record)
    assert decoded["sampling_rate"] == record["media"]["source_sample_rate"]
    assert len(decoded["array"]) == len(expected)  # the window, not the whole file
    assert np.max(np.abs(decoded["array"] - expected)) < 2e-4  # 16-bit FLAC
    assert row["tags"] and row["status"] == record["status"]


def test_webdataset_shards_read_back_with_the_webdataset_library(
    segmented_run: Path, tmp_path: Path
) -> None:
    from fusionaudio.dataset.export import export

    out = tmp_path / "wds"
    records = _records(segmented_run)
    report = export(segmented_run, "webdataset", out, None, rows_per_shard=3, sample_rate=16_000)
    assert report.rows == len(records) and not report.skipped
    assert len(report.files) == (len(records) + 2) // 3
    shards = [str(p) for p in sorted(out.glob("shard-*.tar"))]
    seen = {}
    for sample in wds.WebDataset(shards, shardshuffle=False):
        meta = json.loads(sample["json"])
        audio, rate = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
        assert "." not in sample["__key__"]  # a dot would split the key's extension
        seen[meta["clip_id"]] = (audio, rate, meta)
    assert sorted(seen) == sorted(records)
    audio, rate, meta = seen["dog.flac#0000"]
    assert rate == 16_000 and meta["sample_rate"] == 16_000
    expected = _window(records["dog.flac#0000"], 16_000)
    assert abs(len(audio) - len(expected)) <= 1
    assert meta["window_end_s"] == records["dog.flac#0000"]["media"]["window_end_s"]


def test_a_record_whose_audio_is_gone_is_skipped_with_its_reason(
    segmented_run: Path, tmp_path: Path
) -> None:
    from fusionaudio.dataset.export import export

    run_copy = tmp_path / "run"
    shutil.copytree(segmented_run, run_copy)
    lines = (run_copy / "results.jsonl").read_text().splitlines()
    moved = json.loads(lines[0])
    moved["source"] = str(tmp_path / "moved-away.wav")
    lines[0] = json.dumps(moved)
    (run_copy / "results.jsonl").write_text("\n".join(lines) + "\n")
    report = export(run_copy, "hf", tmp_path / "hf", None)
    assert report.rows == len(lines) - 1
    assert list(report.skipped) == [moved["clip_id"]]
    assert "audio unreadable" in report.skipped[moved["clip_id"]]
