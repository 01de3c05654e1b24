"""Stage 2 with the real offline LLM (Qwen2.5-Coder-1.5B through llama.cpp) on real clips."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from fusionaudio.backends.llm import GenerationRequest
from fusionaudio.backends.llm_llama_cpp import LlamaCppLLM
from fusionaudio.config import RunConfig
from fusionaudio.pipeline.run import run
from fusionaudio.stages.fusion.fusion import CAPTION_SCHEMAS, FusionStage
from fusionaudio.stages.fusion.llm_choice import LLMSettings
from fusionaudio.stages.fusion.validate import (
    check_leaks,
    check_transcript_copy,
    content_words,
)
from tests.media_factory import EXAMPLES
from tests.real_sounds import labelled_clips

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


def test_llama_cpp_decodes_a_batch_as_parallel_sequences(models_dir: Path) -> None:
    """Three fusion requests (drafts: reference captions of real recordings) through two
    parallel sequences: every answer is schema-valid JSON, and a fixed seed gives the same
    answers on a later call, whatever was decoded in between (the cached prefix)."""
    captions = sorted({clip.caption for clip in labelled_clips()})[:3]
    prompt = FusionStage(LLMSettings(), wants=()).prompt()
    requests = [
        GenerationRequest(
            prompt.messages(f"<draft>\n{caption}\n</draft>"), 80, 0.2, CAPTION_SCHEMAS["small"], 0
        )
        for caption in captions
    ]
    llm = LlamaCppLLM("qwen2.5-coder-1.5b", models_dir, n_ctx=1024, threads=2, parallel=2)
    llm.setup()
    first = llm.generate_batch(requests)
    assert len(first) == 3
    for reply in first:
        answer = json.loads(reply.text)
        assert set(answer) == {"caption"} and len(answer["caption"].split()) >= 2
        assert reply.completion_tokens and reply.prompt_tokens and reply.prompt_tokens > 50
    # without a schema a sequence stops at max_tokens; this call also leaves another
    # prefix in the cache, which must not change the next answers
    free = llm.generate_batch([replace(requests[2], json_schema=None, max_tokens=4)])
    assert free[0].completion_tokens is not None and free[0].completion_tokens <= 4
    again = llm.generate_batch(requests)
    assert [r.text for r in again] == [r.text for r in first]
