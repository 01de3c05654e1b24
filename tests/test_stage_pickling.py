"""Stages travel to worker processes (Ray actors, process pools): every stage of every
preset pickles before setup() and arrives with the same configuration."""

from __future__ import annotations

import cloudpickle
import pytest

from fusionaudio.config import PRESETS, RunConfig, load_config
from fusionaudio.pipeline.graph import build_stages


@pytest.mark.parametrize("preset", PRESETS)
def test_every_stage_of_every_preset_pickles_before_setup(preset: str) -> None:
    data = load_config(preset=preset).model_dump(mode="json")
    for section in data["experts"].values():
        section["enabled"] = True
    stages = build_stages(RunConfig.model_validate(data))
    assert {s.name for s in stages} >= {"vad", "tagging", "asr", "fusion", "clap", "qa"}
    for stage in stages:
        copy = cloudpickle.loads(cloudpickle.dumps(stage))
        assert type(copy) is type(stage)
        assert copy.config_hash() == stage.config_hash(), stage.name
