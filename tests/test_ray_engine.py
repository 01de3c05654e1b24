"""The Ray Data engine writes the same records as the local engine (Ray in-process)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from fusionaudio.config import ConfigError, RunConfig, load_config
from fusionaudio.engine.ray_data import RayDataEngine
from fusionaudio.pipeline.run import make_engine, run
from tests.openai_server import ServerScript, openai_llm, serve
from tests.real_sounds import clips_of

ray = pytest.importorskip("ray")


def _comparable(run_dir: Path) -> dict[str, Any]:
    """Each record without what differs by nature between runs (timings, hosts)."""
    out = {}
    for line in (run_dir / "results.jsonl").read_text().splitlines():
        record = json.loads(line)
        out[record["clip_id"]] = {
            "status": record["status"],
            "error": record["error"],
            "caption": (record.get("caption") or {}).get("text"),
            "qa": [(p["question"], p["answer"]) for p in record.get("qa") or []],
            "scores": record.get("scores"),
            "warnings": record.get("warnings"),
            "cues": {name: cue["output"] for name, cue in record["cues"].items()},
            "media": record["media"],
        }
    return out


def test_ray_engine_writes_the_same_records_as_the_local_engine(
    tmp_path: Path, examples_dir: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("speech_fox.wav", "engine_start.mp3"):
        shutil.copy(examples_dir / name, inputs)
    for label in ("dog_bark", "rain", "siren"):
        clip = clips_of(label)[0]
        shutil.copy(clip.path, inputs / f"{label}{clip.path.suffix}")
    (inputs / "broken.wav").write_bytes(b"RIFF not audio")

    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(tmp_path / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging", "given_tags"}
    data["qa"]["enabled"] = True
    with serve(ServerScript(reply=lambda body: "{}")) as url:
        data["fusion"].update(
            enabled=True, max_attempts=1,
            llm=openai_llm(url, timeout_s=5),
        )  # fmt: skip
        config = RunConfig.model_validate(data)
        local = run(inputs, tmp_path / "local", config)
        ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
        try:
            # the preset's actor groups: given_tags, vad and tagging share one actor
            engine = RayDataEngine(
                partition_size=4,
                timings=lambda task: task.timings,
                groups=config.engine.actor_groups,
            )
            on_ray = run(inputs, tmp_path / "ray", config, engine=engine)
        finally:
            ray.shutdown()
    assert on_ray.total == local.total == 6
    assert on_ray.counts == local.counts and on_ray.counts["error"] == 1
    assert _comparable(tmp_path / "ray") == _comparable(tmp_path / "local")
    # each actor wrote its own cache segment; the driver compacted them into one file
    assert [p.name for p in (tmp_path / "ray" / "cache").iterdir()] == ["cues.sqlite"]
    run_json = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run_json["engine"]["steps"]["tagging"]["busy_s"] > 0


def test_engine_kind_ray_builds_the_ray_engine() -> None:
    data = load_config().model_dump(mode="json")
    data["engine"].update(kind="ray", ray_address="auto", partition_size=500)
    engine = make_engine(RunConfig.model_validate(data))
    assert isinstance(engine, RayDataEngine)
    assert engine.address == "auto" and engine.partition_size == 500


def test_actor_shares_fit_a_small_machine() -> None:
    """On 2 CPUs, nine 1-CPU steps must shrink until each step's workers fit at once; GPU
    shares shrink only until one actor per step fits."""
    from dataclasses import dataclass

    from fusionaudio.engine.ray_data import _shares

    @dataclass
    class Res:
        cpus: float
        gpus: float

    @dataclass
    class FakeStep:
        resources: Res
        workers: int = 1

    steps: list[Any] = [FakeStep(Res(1.0, 0.0)) for _ in range(8)] + [FakeStep(Res(1.0, 1.0))]
    shares = _shares(steps, {"CPU": 2.0, "GPU": 1.0})
    assert sum(c for c, _ in shares) == pytest.approx(2.0)
    assert shares[-1][1] == 1.0
    assert _shares(steps, {"CPU": 64.0, "GPU": 4.0}) == [(1.0, 0.0)] * 8 + [(1.0, 1.0)]

    steps[3].workers = 2  # separation in the offline preset: both of its actors must fit
    shares = _shares(steps, {"CPU": 2.0, "GPU": 1.0})
    assert sum(c * s.workers for (c, _), s in zip(shares, steps, strict=True)) == (
        pytest.approx(2.0)
    )
    steps[-1].workers = 4  # four GPU actors on one GPU would share its memory: not scaled
    assert _shares(steps, {"CPU": 64.0, "GPU": 1.0})[-1] == (1.0, 1.0)


def test_grouped_steps_share_one_actor_and_keep_their_own_batches() -> None:
    """A group chains its steps into one (one actor on Ray); each member still gets
    batches of its own size, and the chain asks for the most any member declares."""
    from dataclasses import dataclass, field

    from fusionaudio.engine.ray_data import grouped

    @dataclass
    class Res:
        cpus: float
        gpus: float = 0.0

    @dataclass
    class Logs:
        name: str
        batch_size: int
        resources: Res = field(default_factory=lambda: Res(1.0))
        workers: int = 1
        batches: list[list[int]] = field(default_factory=list)

        def setup(self) -> None: ...

        def teardown(self) -> None: ...

        def process(self, batch: list[int]) -> list[int]:
            self.batches.append(list(batch))
            return [x + 1 for x in batch]

    steps: list[Any] = [Logs("load", 1), Logs("vad", 8), Logs("asr", 1, Res(2.0)), Logs("end", 4)]
    chained = grouped(steps, [["vad", "switched_off", "asr"]])
    assert [s.name for s in chained] == ["load", "vad+asr", "end"]
    chain = chained[1]
    assert (chain.batch_size, chain.resources.cpus) == (8, 2.0)
    assert chain.process(list(range(8))) == [x + 2 for x in range(8)]
    assert steps[1].batches == [list(range(8))]
    assert steps[2].batches == [[x + 1] for x in range(8)]  # ASR's batch of one, eight times

    assert [s.name for s in grouped(steps, [["asr"], ["nothing", "here"]])] == [
        "load", "vad", "asr", "end"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="not consecutive steps"):
        grouped(steps, [["load", "asr"]])
    with pytest.raises(ValueError, match="not consecutive steps"):
        grouped(steps, [["asr", "vad"]])


def test_a_misspelt_step_in_actor_groups_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("engine:\n  actor_groups: [[vad, taging]]\n")
    with pytest.raises(ConfigError, match="no step named taging"):
        load_config(config)


def test_a_killed_ray_driver_resumes_with_every_clip_exactly_once(
    tmp_path: Path, models_dir: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.real_sounds import labelled_clips

    inputs = tmp_path / "in"
    inputs.mkdir()
    for index, clip in enumerate(labelled_clips()[::9][:12]):
        shutil.copy(clip.path, inputs / f"{index:02d}-{clip.path.name}")
    config = tmp_path / "ray.yaml"
    config.write_text(
        f"models_dir: {models_dir}\nstore: {{shard_records: 1, shard_max_age_s: 0.1}}\n"
        "engine: {kind: ray, partition_size: 6}\nfusion: {enabled: false}\n"
        "qa: {enabled: false}\nquality: {enabled: false}\nexperts:\n"
        + "".join(f"  {name}: {{enabled: false}}\n"
                  for name in ("separation", "asr", "voice", "audio_description", "music", "vision")),
        encoding="utf-8",
    )  # fmt: skip
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "fusionaudio", "run", str(inputs), "--out", str(run_dir),
               "--config", str(config), "--quiet"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and first.poll() is None:
            if len(list((run_dir / "shards").glob("part-*.jsonl"))) >= 3:
                break
            time.sleep(0.2)
        assert first.poll() is None, "the run ended before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        done_before = len(list((run_dir / "shards").glob("part-*.jsonl")))
        second = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    finally:
        subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "stop", "--force"],
                       capture_output=True, check=False)  # fmt: skip
    assert second.returncode == 0, second.stderr[-2000:]
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["clip_id"] for r in records) == sorted(p.name for p in inputs.iterdir())
    assert all(r["status"] in ("ok", "uncertain") for r in records)
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["counts"]["reused"] >= done_before >= 3
    assert run_json["engine"]["kind"] == "ray"


@pytest.fixture(scope="module")
def ray_session() -> Any:
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


class _DiesOnce:
    """A step whose worker process is killed (SIGKILL) in its first batch, once per test."""

    name = "dies_once"
    batch_size = 2
    workers = 1

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def setup(self) -> None:
        pass

    def process(self, batch: list[int]) -> list[int]:
        import os
        import signal

        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return [item * 10 for item in batch]

    def teardown(self) -> None:
        pass


class _AddOne(_DiesOnce):
    name = "add_one"

    def process(self, batch: list[int]) -> list[int]:
        return [item + 1 for item in batch]


def test_a_worker_killed_in_mid_stage_loses_and_repeats_no_item(
    ray_session: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "killed"
    engine = RayDataEngine(partition_size=5)
    seen: list[int] = []
    steps: list[Any] = [_AddOne(marker), _DiesOnce(marker)]
    engine.run(steps, range(25), seen.append)
    assert marker.exists()  # a worker really died
    assert sorted(seen) == [(i + 1) * 10 for i in range(25)]


class _CountsSetups(_AddOne):
    """Writes one file per ``setup()``: how often the step's actors were started."""

    name = "counts_setups"

    def setup(self) -> None:
        import os
        import uuid

        (self.marker / f"setup-{os.getpid()}-{uuid.uuid4().hex[:6]}").touch()


def test_actor_pools_start_once_for_all_partitions(ray_session: Any, tmp_path: Path) -> None:
    """Ten partitions of three items: every item comes out once, and the step's one
    actor is set up once for the run (not once per partition)."""
    seen: list[int] = []
    RayDataEngine(partition_size=3).run([_CountsSetups(tmp_path)], range(30), seen.append)
    assert sorted(seen) == [i + 1 for i in range(30)]
    assert len(list(tmp_path.glob("setup-*"))) == 1


def test_an_llm_server_down_for_a_while_fails_only_the_clips_it_touched(
    ray_session: Any, tmp_path: Path
) -> None:
    """On Ray: the clips whose fusion hit the outage are errors, the others complete; the
    same command with --retry-errors once the server is back recomputes those clips only."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for label in ("dog_bark", "rain", "siren", "applause", "cat_meow"):
        clip = clips_of(label)[0]
        shutil.copy(clip.path, inputs / f"{label}{clip.path.suffix}")
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(tmp_path / "models")
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging"}
    data["qa"]["enabled"] = False
    data["quality"]["enabled"] = False
    script = ServerScript(reply=lambda body: "{}", actions=["500", "500"])
    with serve(script) as url:
        data["fusion"].update(
            enabled=True, max_attempts=1,
            llm=openai_llm(url, timeout_s=5),
        )  # fmt: skip
        config = RunConfig.model_validate(data)
        engine = RayDataEngine(partition_size=5)
        first = run(inputs, tmp_path / "run", config, engine=engine)
        assert not script.actions  # the outage is over before the second run
        records = [
            json.loads(line)
            for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()
        ]
        failed = [r for r in records if r["status"] == "error"]
        # a failed batch is retried clip by clip, so the two failures may cost one clip
        assert 1 <= len(failed) <= 2 and first.total == len(records) == 5
        assert all(r["error"].startswith("fusion failed") for r in failed)
        assert all(r["caption"] for r in records if r["status"] not in ("error", "uncertain"))
        second = run(
            inputs, tmp_path / "run", config,
            engine=RayDataEngine(partition_size=5), retry_errors=True,
        )  # fmt: skip
    assert second.counts["error"] == 0 and second.processed == len(failed)
    assert second.stages["fusion"].computed == len(failed)
    assert second.stages["tagging"].computed == 0


class _Stamps(_AddOne):
    """Leaves a file per item saying when this step finished it (the actors' clock).

    Starts only once the next step's actor is up, so that a slow actor start on a busy
    machine cannot pass for steps taking turns."""

    name = "stamps"

    def process(self, batch: list[int]) -> list[int]:
        deadline = time.time() + 120
        while not (self.marker / "stamps_later-ready").exists() and time.time() < deadline:
            time.sleep(0.05)
        for item in batch:
            time.sleep(0.3)
            (self.marker / f"{self.name}-{item}").write_text(repr(time.time()))
        return batch


class _StampsLater(_AddOne):
    name = "stamps_later"

    def setup(self) -> None:
        (self.marker / "stamps_later-ready").touch()

    def process(self, batch: list[int]) -> list[int]:
        for item in batch:
            (self.marker / f"{self.name}-{item}").write_text(repr(time.time()))
        return batch


def test_the_next_step_starts_before_a_partition_has_passed_the_step_before(
    ray_session: Any, tmp_path: Path
) -> None:
    """One partition of eight items: the second step finishes its first item while the
    first step is still on the partition's later items, as the local engine's steps
    overlap. Were a partition to leave a step only as a whole, the two would run one
    after the other and a run would go no faster than the sequential engine."""
    seen: list[int] = []
    steps: list[Any] = [_Stamps(tmp_path), _StampsLater(tmp_path)]
    RayDataEngine(partition_size=8).run(steps, range(8), seen.append)
    assert sorted(seen) == list(range(8))

    def stamps(name: str) -> list[float]:
        return [float(p.read_text()) for p in tmp_path.glob(f"{name}-[0-9]*")]

    assert min(stamps("stamps_later")) < max(stamps("stamps"))
