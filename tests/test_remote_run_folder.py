"""A run folder given as a URI (an object store, or any pyarrow / fsspec filesystem): the
run works in a local staging folder, the remote folder ends up with every shard, the
cache and the results, and a run from a fresh staging folder (another machine) or after
a failed copy resumes from what the remote folder holds without computing a clip again."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from fusionaudio.cli import cli
from fusionaudio.config import RunConfig
from fusionaudio.pipeline.run import run
from fusionaudio.store.remote_folder import RemoteFolderError, RemoteRunFolder
from tests.real_sounds import clips_of

LABELS = ("dog_bark", "rain", "bell_gong")


def _manifest(tmp_path: Path) -> Path:
    rows = [{"path": str(clips_of(label)[0].path), "clip_id": label} for label in LABELS]
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def _with_staging(config: RunConfig, staging: Path) -> RunConfig:
    data = config.model_dump()
    data["store"].update({"staging_dir": staging, "shard_records": 1})  # a shard per clip
    return RunConfig.model_validate(data)


def _read(folder: RemoteRunFolder, relative: str) -> bytes:
    with folder.filesystem.open_input_stream(f"{folder.root}/{relative}") as f:
        data: bytes = f.read()
    return data


def _remote_shards(folder: RemoteRunFolder) -> list[str]:
    selector = pafs.FileSelector(f"{folder.root}/shards", allow_not_found=True)
    return sorted(i.base_name for i in folder.filesystem.get_file_info(selector))


def _cached_cues(run_dir: Path) -> int:
    with closing(sqlite3.connect(run_dir / "cache" / "cues.sqlite")) as db:
        count: int = db.execute("SELECT COUNT(*) FROM cues").fetchone()[0]
    return count


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_a_remote_run_folder_gets_everything_and_another_machine_resumes_from_it(
    tmp_path: Path, config: RunConfig, scheme: str
) -> None:
    # memory:// goes through fsspec, file:// through pyarrow's own filesystem
    uri = (
        f"memory://fusionaudio-{uuid.uuid4().hex}/run"
        if scheme == "memory"
        else (tmp_path / "bucket" / "run").as_uri()
    )
    manifest = _manifest(tmp_path)
    first = run(manifest, uri, _with_staging(config, tmp_path / "machine-a"))
    assert first.remote == uri and first.processed == 3 and first.counts["error"] == 0
    assert first.run_dir.parent == tmp_path / "machine-a"
    remote = RemoteRunFolder.open(uri)
    local_shards = sorted(p.name for p in (first.run_dir / "shards").iterdir())
    assert _remote_shards(remote) == local_shards and len(local_shards) == 3
    for name in ("results.jsonl", "results.parquet", "run.json", "cache/cues.sqlite"):
        assert _read(remote, name) == (first.run_dir / name).read_bytes(), name
    assert {
        json.loads(line)["clip_id"] for line in _read(remote, "results.jsonl").splitlines()
    } == set(LABELS)

    # another machine: an empty staging folder; the shards and the cache come down
    second = run(manifest, uri, _with_staging(config, tmp_path / "machine-b"))
    assert (second.processed, second.reused) == (0, 3)
    assert (second.run_dir / "results.jsonl").read_bytes() == _read(remote, "results.jsonl")
    assert _read(remote, "results.jsonl") == (first.run_dir / "results.jsonl").read_bytes()
    assert _cached_cues(second.run_dir) == _cached_cues(first.run_dir) > 0


def test_a_failed_copy_loses_nothing_and_the_next_run_finishes_it(
    tmp_path: Path, config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = (tmp_path / "bucket" / "run").as_uri()
    manifest = _manifest(tmp_path)
    staged = _with_staging(config, tmp_path / "staging")

    def unreachable(self: RemoteRunFolder, source: Path, relative: str) -> None:
        raise OSError("connection reset by peer")

    with monkeypatch.context() as patch:
        patch.setattr(RemoteRunFolder, "push", unreachable)
        with pytest.raises(RemoteFolderError, match="Run the same command again") as failed:
            run(manifest, uri, staged)
    assert "staging folder" in str(failed.value)
    remote = RemoteRunFolder.open(uri)
    assert _remote_shards(remote) == []  # nothing reached the remote folder

    again = run(manifest, uri, staged)  # the store answers again
    assert (again.processed, again.reused) == (0, 3)  # every clip came from the staging folder
    assert len(_remote_shards(remote)) == 3
    lines = _read(remote, "results.jsonl").splitlines()
    assert sorted(json.loads(line)["clip_id"] for line in lines) == sorted(LABELS)

    # a run killed after finishing a shard but before copying it: the next run copies it
    remote.filesystem.delete_file(f"{remote.root}/shards/{_remote_shards(remote)[0]}")
    resumed = run(manifest, uri, staged)
    assert resumed.processed == 0 and len(_remote_shards(remote)) == 3
    summary = json.loads(_read(remote, "run.json"))
    assert summary["remote"] == uri and summary["shard_copy_failures"] == []


def test_an_unknown_scheme_is_refused_before_anything_runs(
    tmp_path: Path, config: RunConfig
) -> None:
    staging = tmp_path / "staging"
    with pytest.raises(RemoteFolderError, match="nosuchscheme://bucket/run"):
        run(_manifest(tmp_path), "nosuchscheme://bucket/run", _with_staging(config, staging))
    assert not staging.exists()
    shown = CliRunner().invoke(
        cli, ["run", str(_manifest(tmp_path)), "--out", "nosuchscheme://bucket/run", "--quiet"]
    )
    assert shown.exit_code != 0 and "cannot open the run folder" in shown.output
