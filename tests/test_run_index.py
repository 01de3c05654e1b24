"""The run folder's on-disk index: it follows the shards (only new ones are read; a
changed, vanished or unreadable state is rebuilt), names the owner of a shared caption
whatever the order, and lets the driver resume and assemble a run in memory that does
not grow with the number of clips."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tracemalloc
from pathlib import Path

import pytest

from fusionaudio.config import ConfigError, RunConfig, load_config
from fusionaudio.pipeline.run import run
from fusionaudio.schema import Clip
from fusionaudio.store.results import ShardWriter, assemble
from fusionaudio.store.run_index import DuplicateClipIdError, Newest, RunIndex
from tests.real_sounds import clips_of


def _record(clip_id: str, caption: str | None = None, status: str = "ok") -> dict[str, object]:
    return {
        "clip_id": clip_id,
        "source": f"/data/{clip_id}.wav",
        "status": status,
        "caption": None if caption is None else {"text": caption, "provenance": {}},
        "provenance": {"pipeline_hash": "p1", "source_size": None, "source_mtime_ns": None},
    }


def _write(shards: Path, records: list[dict[str, object]], per_shard: int = 3) -> None:
    writer = ShardWriter(shards, per_shard, 3600.0)
    for record in records:
        writer.add(record)
    writer.flush()


def _clips(ids: list[str]) -> list[Clip]:
    return [Clip(clip_id=i, source=f"/data/{i}.wav") for i in ids]


def _keep_all(source: str, newest: Newest) -> bool:
    return newest.pipeline_hash == "p1"


def test_the_owner_of_a_shared_caption_depends_on_the_clips_not_their_order(
    tmp_path: Path,
) -> None:
    records = [
        _record("z", "A dog barks."),
        _record("m", "a dog  BARKS."),  # the same words, case and spacing aside
        _record("x", "Rain falls."),
        _record("q"),
    ]
    owners = []
    for name, order in (("forward", records), ("backward", records[::-1])):
        _write(tmp_path / name / "shards", order)
        with RunIndex(tmp_path / name / "index.sqlite") as index:
            index.set_inputs(_clips(["q", "x", "m", "z"]))
            index.refresh(tmp_path / name / "shards")
            owners.append({p.clip_id: p.caption_owner for p in index.positions()})
    assert owners[0] == owners[1] == {"z": "m", "m": "m", "x": None, "q": None}


def test_the_index_reads_new_shards_only_and_rebuilds_when_the_shards_disagree(
    tmp_path: Path,
) -> None:
    shards, path = tmp_path / "shards", tmp_path / "index.sqlite"
    _write(shards, [_record(f"c{i}") for i in range(6)])  # two shards
    with RunIndex(path) as index:
        assert index.refresh(shards) == 2
        assert index.refresh(shards) == 0
        _write(shards, [_record("c0", status="error"), _record("c9")])  # a third, newer
        assert index.refresh(shards) == 1
        index.set_inputs(_clips(["c0", "c9"]))
        assert index.mark_done(_keep_all) == {"error": 1, "ok": 1}  # c0's newest record

        (shards / "part-000003.jsonl").unlink()  # the newer record is gone: c0 is ok again
        assert index.refresh(shards) == 2
        index.set_inputs(_clips(["c0", "c9"]))
        assert index.mark_done(_keep_all) == {"ok": 1}
        assert [c.clip_id for c in index.todo()] == ["c9"]

    path.write_bytes(b"not a database at all" * 100)
    with RunIndex(path) as index:  # unreadable: derived data, rebuilt from the shards
        assert index.refresh(shards) == 2
        index.set_inputs(_clips(["c5"]))
        assert index.mark_done(_keep_all) == {"ok": 1}


def test_a_damaged_shard_line_is_skipped_counted_and_its_clip_done_again(
    tmp_path: Path,
) -> None:
    shards = tmp_path / "shards"
    _write(shards, [_record("a", "A dog barks."), _record("b"), _record("c")])
    shard = shards / "part-000001.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    shard.write_bytes(lines[0] + b'{"clip_id": "b", "status": "o\xff\n' + lines[2])
    with RunIndex(tmp_path / "index.sqlite") as index:
        index.refresh(shards)
        assert index.damaged_lines() == 1
        index.set_inputs(_clips(["a", "b", "c"]))
        assert index.mark_done(_keep_all) == {"ok": 2}
        assert [c.clip_id for c in index.todo()] == ["b"]
        written = assemble(
            shards, index.positions(), tmp_path / "results.jsonl", tmp_path / "results.parquet"
        )
    assert written == 2
    records = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [r["clip_id"] for r in records] == ["a", "c"]


def test_a_repeated_clip_id_is_named(tmp_path: Path) -> None:
    with (
        RunIndex(tmp_path / "index.sqlite") as index,
        pytest.raises(DuplicateClipIdError, match="'b'"),
    ):
        index.set_inputs(_clips(["a", "b", "c", "b"]))


def test_a_manifest_with_a_repeated_clip_id_is_refused_before_anything_runs(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "clips.jsonl"
    (tmp_path / "a.wav").write_bytes(b"")
    rows = [{"path": "a.wav", "clip_id": "one"}, {"path": "a.wav", "clip_id": "one"}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate clip_id 'one'"):
        run(manifest, tmp_path / "run", RunConfig())
    assert not (tmp_path / "run" / "shards").exists()


def _held(tracemalloc_filters: list[tracemalloc.Filter]) -> int:
    """Bytes Python holds now, leaving out the interpreter's table of interned strings
    (pathlib interns every path part; that table grows and shrinks with the whole
    process, not with this code)."""
    snapshot = tracemalloc.take_snapshot().filter_traces(tracemalloc_filters)
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _driver_pass(folder: Path, count: int) -> tuple[int, int]:
    """Resume bookkeeping and assembly over ``count`` clips, half of them done; returns
    (bytes held while the clips to do stream to the engine, records assembled)."""
    shards = folder / "shards"
    _write(shards, [_record(f"clip-{i:07d}", f"caption {i % 50}") for i in range(count // 2)], 64)
    ids = (f"clip-{i:07d}" for i in range(count))
    filters = [tracemalloc.Filter(False, pathlib.__file__), tracemalloc.Filter(False, __file__)]
    tracemalloc.start()
    try:
        with RunIndex(folder / "index.sqlite") as index:
            index.set_inputs(Clip(clip_id=i, source=f"/data/{i}.wav") for i in ids)
            index.refresh(shards)
            index.mark_done(_keep_all)
            todo, held = 0, 0
            for _ in index.todo():  # the engine would be running now
                todo += 1
                if todo == count // 4:
                    held = _held(filters)
            assert todo == count - count // 2
            written = assemble(
                shards, index.positions(), folder / "results.jsonl", folder / "results.parquet"
            )
        return held, written
    finally:
        tracemalloc.stop()


def test_driver_memory_does_not_grow_with_the_number_of_clips(tmp_path: Path) -> None:
    _driver_pass(tmp_path / "warm-up", 200)  # first-use allocations of sqlite3 and pyarrow
    small, written_small = _driver_pass(tmp_path / "small", 5_000)
    large, written_large = _driver_pass(tmp_path / "large", 50_000)
    assert (written_small, written_large) == (2_500, 25_000)
    # An id list, a done map or one position per clip would hold 45,000 more entries
    # while the engine runs (several MB); the index holds one page of 2,000 rows.
    assert large < small + 512 * 1024, (small, large)
    lines = (tmp_path / "large" / "results.jsonl").read_text().splitlines()
    marked = [json.loads(line) for line in lines[:100]]
    assert all(r.get("warnings") for r in marked if int(r["clip_id"][5:]) >= 50)
    assert not any(r.get("warnings") for r in marked if int(r["clip_id"][5:]) < 50)
    assert os.path.getsize(tmp_path / "large" / "results.parquet") > 0


def test_a_run_over_a_damaged_shard_computes_that_clip_again_and_says_so(
    tmp_path: Path, models_dir: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for label in ("dog_bark", "rain", "bell_gong"):
        source = clips_of(label)[0].path
        shutil.copy(source, inputs / f"{label}{source.suffix}")
    data = load_config().model_dump(mode="json")
    data["models_dir"] = str(models_dir)
    data["store"]["shard_records"] = 1
    for name, section in data["experts"].items():
        section["enabled"] = name in {"vad", "tagging"}
    for stage in ("fusion", "qa", "quality"):
        data[stage]["enabled"] = False
    config = RunConfig.model_validate(data)
    run_dir = tmp_path / "run"
    assert run(inputs, run_dir, config).processed == 3

    shard = sorted((run_dir / "shards").iterdir())[1]
    damaged_id = json.loads(shard.read_text())["clip_id"]
    shard.write_bytes(shard.read_bytes()[:-40] + b"\n")  # cut short, as an interrupted copy
    again = run(inputs, run_dir, config)
    assert (again.processed, again.damaged_shard_lines, again.total) == (1, 1, 3)
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(r["clip_id"] for r in records) == sorted(p.name for p in inputs.iterdir())
    assert damaged_id in {r["clip_id"] for r in records}
    assert json.loads((run_dir / "run.json").read_text())["damaged_shard_lines"] == 1
