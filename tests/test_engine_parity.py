"""Engine parity on the real pipeline: the examples through the sequential (reference) and
the local streaming engine, every stage of the offline preset on, the real offline LLM
included, give the same records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fusionaudio.config import RunConfig, load_config
from fusionaudio.pipeline.run import run

# What differs between two honest runs: wall-clock times and token rates.
TIMINGS = {"elapsed_s", "latency_s", "completion_tokens_per_s", "timings_s"}


def comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def test_sequential_and_local_engines_write_the_same_records(
    examples_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(models_dir)
    records: dict[str, dict[str, Any]] = {}
    for kind in ("sequential", "local"):
        data["engine"]["kind"] = kind
        run(examples_dir, tmp_path / kind, RunConfig.model_validate(data))
        lines = (tmp_path / kind / "results.jsonl").read_text().splitlines()
        records[kind] = {r["clip_id"]: comparable(r) for r in map(json.loads, lines)}
        engine = json.loads((tmp_path / kind / "run.json").read_text())["engine"]["kind"]
        assert engine == kind

    assert set(records["local"]) == {p.name for p in examples_dir.iterdir() if p.suffix != ".md"}
    for clip_id, record in records["sequential"].items():
        assert record == records["local"][clip_id], clip_id
    captions = [r["caption"] for r in records["local"].values() if r["caption"] is not None]
    assert captions, "no clip was captioned"
    assert any(c["provenance"].get("realized_by") == "llm" for c in captions)
    experts = {name for r in records["local"].values() for name in r["cues"]}
    assert {"separation", "asr", "music", "vision"} <= experts
    assert any(r["scores"] for r in records["local"].values())
    assert any(r["qa"] for r in records["local"].values())
