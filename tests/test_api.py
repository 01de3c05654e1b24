"""The Python API on real clips: a file, the same audio as an array, a ``datasets`` batch
through ``Dataset.map``, and ``run`` — one set of models, the records a run writes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fusionaudio import Pipeline
from fusionaudio.config import RunConfig, load_config
from tests.openai_server import ServerScript, serve
from tests.real_sounds import clips_of
from tests.test_fusion_rules import _server_config


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The fast experts; the LLM answers nonsense, so code writes each caption from the plan."""
    data = load_config().model_dump()
    data["models_dir"] = tmp_path_factory.mktemp("models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging", "given_tags"}
    with serve(ServerScript(reply=lambda body: "{}")) as url:
        config = _server_config(RunConfig.model_validate(data), url, max_attempts=1)
        with Pipeline(config) as pipeline:
            yield pipeline


@pytest.fixture(scope="module")
def dog() -> Path:
    return clips_of("dog_bark")[0].path


def test_caption_a_file_and_the_same_audio_as_an_array(pipe: Pipeline, dog: Path) -> None:
    from_file = pipe.caption(dog)
    assert from_file.status == "ok" and from_file.caption is not None
    assert "dog" in from_file.caption.text.lower()
    assert from_file.clip_id == dog.name and "tagging" in from_file.cues
    samples, rate = sf.read(dog, dtype="float32")
    from_array = pipe.caption(samples, sample_rate=rate, clip_id="mine")
    assert from_array.clip_id == "mine"
    assert from_array.caption is not None and from_array.caption.text == from_file.caption.text
    steps = pipe._steps
    pipe.caption(dog)
    assert pipe._steps is steps  # the models were loaded once
    with pytest.raises(ValueError, match="sample_rate"):
        pipe.caption(samples)


def test_a_bad_input_is_a_per_clip_error(pipe: Pipeline, tmp_path: Path, dog: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF nothing")
    bad, good = pipe.caption_many([junk, dog])
    assert bad.status == "error" and bad.error and good.status == "ok"


def test_datasets_map_adds_captions(pipe: Pipeline, dog: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rain = clips_of("rain")[0].path
    ds = datasets.Dataset.from_dict({"audio": [str(dog), str(rain)], "label": ["dog", "rain"]})
    ds = ds.cast_column("audio", datasets.Audio())
    out = ds.map(pipe.map_batch, batched=True, batch_size=2)
    assert out["label"] == ["dog", "rain"]
    assert out["status"] == ["ok", "ok"]
    assert "dog" in out["caption"][0].lower() and out["caption"][1]
    assert all(isinstance(s, float) for s in out["clap_score"])


def test_run_writes_the_run_folder(pipe: Pipeline, tmp_path: Path, dog: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(dog, src / dog.name)
    summary = pipe.run(src, tmp_path / "run")
    assert summary.counts["ok"] == 1
    (record,) = map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())
    caption = pipe.caption(dog).caption
    assert caption is not None and record["caption"]["text"] == caption.text
    assert np.isfinite(record["scores"]["clap"])
