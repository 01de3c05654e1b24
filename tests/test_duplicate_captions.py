"""Captions said word for word by several clips are marked by a deterministic pass over the
run's records: the same clips get the same marks whatever the order, and over a resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fusionaudio.config import RunConfig, load_config
from fusionaudio.pipeline.run import run
from fusionaudio.store.results import DUPLICATE_WARNING
from tests.openai_server import ServerScript, openai_llm, serve
from tests.real_sounds import clips_of


def _marks(run_dir: Path) -> dict[str, list[str]]:
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    return {
        r["clip_id"]: [w for w in r.get("warnings", []) if w.startswith(DUPLICATE_WARNING)]
        for r in records
    }


def _manifest(folder: Path, name: str, clip_ids: list[str]) -> Path:
    path = folder / name
    path.write_text("".join(json.dumps({"path": c}) + "\n" for c in clip_ids), encoding="utf-8")
    return path


def test_duplicates_are_marked_the_same_in_any_order_and_over_a_resume(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    dog = clips_of("dog_bark")[0].path
    for name in ("b", "a", "c"):  # one recording three times: one plan, one template caption
        shutil.copy(dog, inputs / f"{name}{dog.suffix}")
    rain = clips_of("rain")[0].path
    shutil.copy(rain, inputs / f"rain{rain.suffix}")
    dogs = [f"{n}{dog.suffix}" for n in ("c", "b", "a")]
    every = [*dogs, f"rain{rain.suffix}"]

    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(tmp_path / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging", "given_tags"}
    data["qa"]["enabled"] = False
    data["engine"]["kind"] = "sequential"
    with serve(ServerScript(reply=lambda body: "{}")) as url:  # the model never answers well
        data["fusion"].update(
            enabled=True, max_attempts=1,
            llm=openai_llm(url, timeout_s=2),
        )  # fmt: skip
        config = RunConfig.model_validate(data)
        forward = run(_manifest(inputs, "forward.jsonl", every), tmp_path / "forward", config)
        backward = run(
            _manifest(inputs, "backward.jsonl", every[::-1]), tmp_path / "backward", config
        )
        resumed_dir = tmp_path / "resumed"
        run(_manifest(inputs, "part.jsonl", [dogs[0], every[-1]]), resumed_dir, config)
        alone = _marks(resumed_dir)
        run(_manifest(inputs, "rest.jsonl", every), resumed_dir, config)
    assert forward.counts.get("ok", 0) + forward.counts.get("filtered", 0) == 4
    assert backward.total == 4

    marks = _marks(tmp_path / "forward")
    assert marks == _marks(tmp_path / "backward") == _marks(resumed_dir)
    first_dog = f"a{dog.suffix}"
    assert marks[first_dog] == [] and marks[every[-1]] == []
    for clip_id in (f"b{dog.suffix}", f"c{dog.suffix}"):
        assert marks[clip_id] == [f"{DUPLICATE_WARNING} {first_dog!r}"]
    assert alone == {dogs[0]: [], every[-1]: []}  # c was unique until a and b came
