"""Stage 2 with the real offline LLM (Qwen2.5-Coder-1.5B through llama.cpp) on real clips."""

from __future__ import annotations

import json
from pathlib import Path

from fusionaudio.config import RunConfig
from fusionaudio.pipeline.run import run
from fusionaudio.stages.fusion.validate import (
    check_leaks,
    check_transcript_copy,
    content_words,
)
from tests.media_factory import EXAMPLES

FOX = "The quick brown fox jumps over the lazy dog. Today we are testing an offline audio captioning pipeline."


def test_llama_cpp_captions_real_clips_and_gates_contradictions(
    tmp_path: Path, full_config: RunConfig
) -> None:
    data = full_config.model_dump(mode="json")
    data["experts"]["vision"]["enabled"] = False
    data["fusion"].update(
        enabled=True, llm={"backend": "llama_cpp", "model": "qwen2.5-coder-1.5b", "threads": 2}
    )
    data["qa"].update(enabled=True, pairs=2)
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "path,clip_id,tags\n"
        f"{EXAMPLES / 'speech_fox.wav'},speech,\n"
        f"{EXAMPLES / 'music_pingus.ogg'},music_labelled_as_dog,Dog:1.0;Bark:0.9\n"
    )
    summary = run(manifest, tmp_path / "run", RunConfig.model_validate(data))
    records = {
        r["clip_id"]: r
        for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
    }

    speech = records["speech"]
    assert speech["status"] == "ok", speech["error"]
    caption = speech["caption"]["text"]
    assert len(caption.split()) >= 6
    assert check_transcript_copy(caption, FOX) == [] and check_leaks(caption) == []
    assert not {"fox", "lazy", "captioning", "pipeline"} & set(content_words(caption))
    assert speech["caption"]["provenance"]["backend"] == "llama_cpp"
    assert len(speech["qa"]) == 2 and all(q["question"].endswith("?") for q in speech["qa"])

    dog = records["music_labelled_as_dog"]
    assert dog["status"] == "uncertain" and dog["caption"] is None and dog["qa"] == []
    assert any("Dog" in w and "Music" in w for w in dog["warnings"])
    assert summary.counts["ok"] == 1 and summary.counts["uncertain"] == 1
    stages = json.loads((tmp_path / "run" / "run.json").read_text())["stages"]
    assert (
        stages["fusion"]["completion_tokens"] > 0
        and stages["fusion"]["completion_tokens_per_s"] > 0
    )
